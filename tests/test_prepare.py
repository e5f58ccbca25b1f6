"""mol_edu.alignment (frames, landmarks, alignment, crops, flow) and mol_edu.prepare (the cache, PreparedDataset,
mol-prepare), on fabricated face videos."""
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mol_edu.datasets import frame_number, read_casme2
from mol_edu.faces import alignment_matrix, clip_indices, detect_face, dlib_model_path, predict_landmarks, transform_points
from mol_edu.alignment import (PrepareError, PrepareSettings, PrepareWarning, align_face, crop_clip,
                               detect_video_landmarks, face_video, follow_box, register_box, tvl1_flow,
                               write_face_tree)
from mol_edu.prepare import (PreparedDataset, check_cached_video, loso_folds, manifest_hash, prepare_index, prepare_video,
                             video_dir_name)

SMALL = PrepareSettings(align_size=72, crop_size=64)  # TV-L1 is ~4x cheaper than at 144; same code path
BIN = Path(sys.executable).parent


def _index(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_casme2(root)


@pytest.fixture(scope="module")
def face_tree(tmp_path_factory):
    return write_face_tree(tmp_path_factory.mktemp("faces") / "casme2", "casme2", subjects=2, videos=1, frames=9)


@pytest.fixture(scope="module")
def prepared(face_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "prepared"
    idx = _index(face_tree)
    summary = prepare_index(idx, out, SMALL, workers=1, progress=False)
    assert len(summary["done"]) == 2
    return idx, out


def _landmarks(bgr):
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return predict_landmarks(rgb, detect_face(rgb))


# --- the recipe ---------------------------------------------------------------------------------------------------

def test_dlib_is_not_loaded_at_import_and_models_are_located():
    code = ("import sys, mol_edu.alignment, mol_edu.prepare, mol_edu.faces; "
            "print('dlib' in sys.modules, 'face_recognition_models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
    assert dlib_model_path().is_file() and dlib_model_path().name == "shape_predictor_68_face_landmarks.dat"


def test_alignment_levels_the_eyes_and_carries_landmarks():
    frame = face_video(1, "grace_hopper")[0]
    tilted = cv2.warpAffine(frame, cv2.getRotationMatrix2D((100, 100), -15, 1.0), (200, 200), borderValue=(128,) * 3)
    lm = _landmarks(tilted)
    gray = cv2.cvtColor(tilted, cv2.COLOR_BGR2GRAY)
    al, lm_al, M = align_face(gray, lm)
    assert al.shape == (144, 144) and al.dtype == np.uint8
    el, er = lm_al[36:42].mean(0), lm_al[42:48].mean(0)
    assert abs(el[1] - er[1]) < 1e-3 and er[0] > el[0]
    # the box rule (chapter 09): the eyes-nose-mouth box, enlarged 2.5x, spans the S = 144 pixels of the output,
    # edge to edge, centred on the canvas centre (S - 1) / 2
    K = np.stack([el, er, lm_al[30], lm_al[48], lm_al[54]])
    assert np.isclose((K.max(0) - K.min(0)).max() * 2.5, 144, atol=1e-3)
    assert np.allclose((K.max(0) + K.min(0)) / 2, 71.5, atol=1e-3)
    # landmarks found again on the aligned frame agree with the carried ones (same transform for image and points)
    again = predict_landmarks(cv2.cvtColor(al, cv2.COLOR_GRAY2RGB), (20, 20, 124, 124))
    assert np.abs(again - lm_al).mean() < 3.0


def test_alignment_rejects_degenerate_landmarks():
    with pytest.raises(ValueError, match="eye centres coincide"):
        alignment_matrix(np.zeros((68, 2)))


def test_crop_copies_landmarks_and_pins_the_release_bug():
    frames = np.arange(2 * 144 * 144, dtype=np.float32).reshape(2, 144, 144)
    lm = np.random.default_rng(0).uniform(20, 120, (2, 68, 2)).astype(np.float32)
    offsets = [(3, 5), (10, 2), (0, 7), (16, 16), (8, 1)]

    def release_crop(ldm, top, left):  # the release: shifts the array it was given, returns the same array
        ldm[..., 0] -= left
        ldm[..., 1] -= top
        return ldm

    shared = lm.copy()
    release = [release_crop(shared, t, l).copy() for t, l in offsets]
    ours = [crop_clip(frames, lm, t, l)[1] for t, l in offsets]
    for k, (t, l) in enumerate(offsets):
        assert np.allclose(lm - ours[k], [l, t])  # ours: each crop shifted by its own offset
        acc = np.sum(offsets[:k + 1], axis=0)
        assert np.allclose(lm - release[k], [acc[1], acc[0]])  # release: the offsets accumulate
    assert np.array_equal(lm, lm.copy()) and not np.shares_memory(ours[0], lm)
    c, _ = crop_clip(frames, lm, 3, 5)
    assert np.array_equal(c, frames[:, 3:131, 5:133])
    with pytest.raises(ValueError, match=r"window \(17, 0\) of size 128 does not fit"):
        crop_clip(frames, lm, 17, 0)


def test_clip_sampling_rule():
    assert clip_indices(8).tolist() == [list(range(8))]
    assert clip_indices(17).tolist() == [[0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]]
    assert np.array_equal(np.sort(clip_indices(70).ravel()), np.arange(64))
    with pytest.raises(ValueError, match="at least 8 frames for one clip, it has 7"):
        clip_indices(7)


def test_tvl1_flow_recovers_a_known_translation():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (96, 96)).astype(np.uint8), (0, 0), 2)
    moved = cv2.warpAffine(img, np.float32([[1, 0, 0.7], [0, 1, -0.4]]), (96, 96), borderMode=cv2.BORDER_REFLECT)
    f = tvl1_flow(img, moved)
    assert f.shape == (2, 96, 96) and f.dtype == np.float32
    assert np.allclose(np.median(f[:, 16:-16, 16:-16], axis=(1, 2)), [0.7, -0.4], atol=0.1)  # x first
    with pytest.raises(PrepareError, match="frames differ in shape"):
        tvl1_flow(img, img[:90])


# --- the cache and the dataset -------------------------------------------------------------------------------

def test_cache_files_are_plain_arrays_with_a_manifest(prepared):
    idx, out = prepared
    d = out / "videos" / video_dir_name(idx[0])
    man = json.loads((d / "manifest.json").read_text())
    assert man["settings"] == SMALL.__dict__ and set(man["versions"]) == {"opencv", "dlib", "numpy"}
    assert man["record"]["subject"] == "sub01" and man["record"]["label"] == idx[0].label
    assert man["record"]["frames"] == [str(p) for p in idx[0].frames[:8]]  # 9 frames -> one clip of the first 8
    for name, meta in man["files"].items():
        a = np.load(d / name, allow_pickle=False)
        assert list(a.shape) == meta["shape"] and str(a.dtype) == meta["dtype"]
    assert np.load(d / "flow.npy").shape == (1, 7, 2, 72, 72)
    assert json.loads((out / "index.json").read_text())["videos"] == [r.key for r in idx]


def test_flow_float16_storage_is_precise_enough(prepared):
    idx, out = prepared
    d = out / "videos" / video_dir_name(idx[0])
    frames = np.load(d / "frames.npy")
    exact = tvl1_flow(frames[0], frames[1])
    stored = np.load(d / "flow.npy")[0, 0].astype(np.float32)
    assert np.abs(stored - exact).max() < 2e-3


def test_dataset_yields_the_shared_sample_dict(prepared):
    idx, out = prepared
    ds = PreparedDataset(out)
    assert len(ds) == 2 and ds.classes == idx.classes and ds.subjects == ["sub01", "sub02"]
    x = ds[0]
    assert set(x) == {"clip", "flow", "landmarks", "label", "subject", "video"}
    assert x["clip"].shape == (1, 8, 64, 64) and x["clip"].dtype == torch.float32
    assert 0 <= x["clip"].min() and x["clip"].max() <= 1
    assert x["flow"].shape == (7, 2, 64, 64) and x["flow"].dtype == torch.float32
    assert x["landmarks"].shape == (8, 68, 2) and x["landmarks"].dtype == torch.float32
    assert x["label"].dtype == torch.int64 and x["label"].ndim == 0 and int(x["label"]) == idx[0].label
    assert (x["subject"], x["video"]) == ("sub01", "casme2/sub01/EP01_01f")   # a video id names its subject
    d = out / "videos" / video_dir_name(idx[0])
    o = SMALL.eval_offset
    assert np.allclose(x["landmarks"].numpy(), np.load(d / "landmarks.npy")[:8] - o)  # centre crop, every time
    assert np.allclose(x["clip"][0].numpy() * 255, np.load(d / "frames.npy")[:8, o:o + 64, o:o + 64])
    assert torch.equal(ds[0]["clip"], x["clip"])


def test_training_crops_are_random_and_consistent(prepared):
    idx, out = prepared
    ds = PreparedDataset(out, train=True, generator=torch.Generator().manual_seed(1))
    d = out / "videos" / video_dir_name(idx[0])
    frames, lms = np.load(d / "frames.npy"), np.load(d / "landmarks.npy")
    flow = np.load(d / "flow.npy")[0].astype(np.float32)
    g = torch.Generator().manual_seed(1)
    seen = set()
    for _ in range(4):
        x = ds[0]
        top, left = torch.randint(0, 72 - 64 + 1, (2,), generator=g).tolist()
        seen.add((top, left))
        assert np.allclose(x["clip"][0].numpy() * 255, frames[:8, top:top + 64, left:left + 64])
        assert np.allclose(x["landmarks"].numpy(), lms[:8] - [left, top])
        assert np.allclose(x["flow"].numpy(), flow[:, :, top:top + 64, left:left + 64])
    assert len(seen) > 1


def test_loso_split(prepared):
    _, out = prepared
    train, test = PreparedDataset(out).loso_split("sub02")
    assert (train.subjects, test.subjects, train.train, test.train) == (["sub01"], ["sub02"], True, False)
    assert loso_folds(["s2", "s1", "s2"]) == [("s1", ["s2"]), ("s2", ["s1"])]
    with pytest.raises(ValueError, match="subject 'sub09' is not in this cache"):
        PreparedDataset(out).loso_split("sub09")
    with pytest.raises(ValueError, match="LOSO needs at least 2 subjects"):
        loso_folds(["s1"])


def test_changed_settings_and_damaged_files_are_rebuilt(face_tree, tmp_path):
    idx = _index(face_tree)
    out = tmp_path / "p"
    prepare_index(idx, out, SMALL, workers=1, progress=False)
    d0 = out / "videos" / video_dir_name(idx[0])
    with open(d0 / "flow.npy", "r+b") as f:
        f.seek(500)
        f.write(b"\xff\xfe\xfd")
    _, why = check_cached_video(d0, SMALL, idx[0])
    assert why == f"damaged file {d0 / 'flow.npy'} (hash mismatch)"
    with pytest.raises(PrepareError, match=r"flow.npy \(hash mismatch\); run mol-prepare again"):
        PreparedDataset(out)
    s = prepare_index(idx, out, SMALL, workers=1, progress=False)
    assert (s["done"], s["cached"]) == ([idx[0].key], [idx[1].key])
    changed = PrepareSettings(align_size=72, crop_size=64, box_enlarge=2.6)
    assert check_cached_video(d0, changed, idx[0])[1] == "settings changed: box_enlarge 2.5 -> 2.6"
    s = prepare_index(idx, out, changed, workers=1, progress=False)
    assert len(s["done"]) == 2
    (d0 / "manifest.json").write_text("{not json")
    assert check_cached_video(d0, changed)[1].startswith("damaged manifest")


def test_detect_once_follows_a_moving_face():
    # the face moves exactly (0.4, -0.2) px per frame: 12 x 6 px over 30 frames
    walk = face_video(30, "grace_hopper")
    every, _ = detect_video_landmarks(walk)
    truth = every[:1] + np.arange(30)[:, None, None] * np.float32([0.4, -0.2])
    err = {}
    for track in (True, False):
        lm, found = detect_video_landmarks(walk, settings=PrepareSettings(redetect=False, track=track))
        assert found.tolist() == [True] + [False] * 29          # only frame 0 was searched
        err[track] = np.linalg.norm(lm - truth, axis=-1).mean(-1)
    e_every = np.linalg.norm(every - truth, axis=-1).mean(-1)
    assert err[True].max() < 2.0 and err[True].mean() < e_every.mean() + 0.5   # following: as close as re-detecting
    assert err[False][-5:].mean() > 2 * err[True][-5:].mean()                     # the first box: left behind
    g = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in walk]
    box = (40, 30, 160, 170)
    assert np.allclose(follow_box(box, g[0], g[0]), box, atol=0.05)
    assert np.allclose(follow_box(box, g[0], g[20]), (48, 26, 168, 166), atol=0.3)   # 20 frames: (8, -4) px
    assert follow_box((-50, -50, -10, -10), g[0], g[20]) is None                     # box outside the frame
    assert follow_box(box, g[0], np.full_like(g[0], 128)) is None                    # nothing to register to
    assert follow_box(box, g[0], g[20], min_correlation=1.01) is None                # the threshold is honoured
    moved, rho = register_box(box, g[0], g[20].astype(np.float64))                  # any dtype: read as float32
    assert np.allclose(moved, (48, 26, 168, 166), atol=0.3) and rho > 0.9
    with pytest.raises(ValueError, match=r"register_box: expected two gray \(H, W\) frames of one size, got \(200, 200\) and \(200, 200, 3\)"):
        register_box(box, g[0], walk[20])


def test_detect_once_keeps_the_last_followed_box_and_says_so():
    walk = face_video(10, "grace_hopper")
    names = [f"sub01/EP01/img{i}.jpg" for i in range(10)]
    s = PrepareSettings(redetect=False)
    ref, _ = detect_video_landmarks(walk, names, s)
    gap = walk.copy()
    gap[3:8] = np.random.default_rng(0).integers(0, 256, gap[3:8].shape, dtype=np.uint8)   # 5 frames of noise
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm, _ = detect_video_landmarks(gap, names, s)
    msgs = [str(w.message) for w in caught if issubclass(w.category, PrepareWarning)]
    assert msgs == ["sub01/EP01: the face box could not be followed on 5 of 10 frames (img3.jpg, img4.jpg, img5.jpg, ...); "
                    "each used the last box that was followed"]
    assert np.allclose(lm[:3], ref[:3]) and np.allclose(lm[8:], ref[8:], atol=1e-3)   # followed again after the gap
    # the noise frames were boxed where frame 2 was: the landmarks of the same box on the same noise
    rgb = cv2.cvtColor(gap[5], cv2.COLOR_BGR2RGB)
    g = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in walk]
    box2 = follow_box(detect_face(cv2.cvtColor(walk[0], cv2.COLOR_BGR2RGB)), g[0], g[2])
    assert np.allclose(lm[5], predict_landmarks(rgb, box2), atol=1e-3)


def test_caches_written_before_track_existed(face_tree, tmp_path):
    idx = _index(face_tree)
    idx.records = idx.records[:1]
    for redetect in (True, False):
        s = PrepareSettings(align_size=72, crop_size=64, redetect=redetect)
        out = tmp_path / f"p{redetect}"
        prepare_index(idx, out, s, workers=1, progress=False)
        d = out / "videos" / video_dir_name(idx[0])
        man = json.loads((d / "manifest.json").read_text())
        del man["settings"]["track"]                               # as an earlier version wrote it
        man["manifest_sha256"] = manifest_hash(man)
        (d / "manifest.json").write_text(json.dumps(man))
        why = check_cached_video(d, s, idx[0])[1]
        # every-frame caches stay valid; detect-once caches used the first box and are rebuilt
        assert why == ("" if redetect else "settings changed: track False -> True")


def test_resume_after_a_kill_loses_and_duplicates_nothing(face_tree, tmp_path):
    idx = _index(face_tree)
    out = tmp_path / "p"
    prepare_index(idx, out, SMALL, workers=1, progress=False)
    # what a kill mid-run leaves: one video never renamed into place, a half-written temporary folder
    d1 = out / "videos" / video_dir_name(idx[1])
    tmp = d1.parent / f".tmp-{d1.name}-12345"
    d1.rename(tmp)
    (tmp / "flow.npy").write_bytes(b"partial")
    s = prepare_index(idx, out, SMALL, workers=1, progress=False)
    assert (s["done"], s["cached"]) == ([idx[1].key], [idx[0].key])
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(video_dir_name(r) for r in idx)
    assert len(PreparedDataset(out)) == 2


# --- bad input -------------------------------------------------------------------------------------------------

def test_corrupt_image_is_named_and_the_video_skipped(face_tree, tmp_path):
    root = shutil.copytree(face_tree, tmp_path / "t")
    idx = _index(root)
    bad = idx[0].frames[3]
    bad.write_bytes(b"\xff\xd8\xff garbage, not a jpeg")
    with pytest.raises(PrepareError, match="unreadable or corrupt image") as e:
        prepare_video(idx[0], tmp_path / "p", idx.classes, SMALL)
    assert str(e.value) == f"{bad}: unreadable or corrupt image"
    s = prepare_index(idx, tmp_path / "p", SMALL, workers=1, progress=False)
    assert s["skipped"] == [(idx[0].key, f"{bad}: unreadable or corrupt image")] and s["done"] == [idx[1].key]


def test_mixed_image_sizes_in_a_video(face_tree, tmp_path):
    root = shutil.copytree(face_tree, tmp_path / "t")
    idx = _index(root)
    f = idx[0].frames[5]
    cv2.imwrite(str(f), cv2.resize(cv2.imread(str(f)), (180, 200)))
    with pytest.raises(PrepareError) as e:
        prepare_video(idx[0], tmp_path / "p", idx.classes, SMALL)
    assert str(e.value) == f"{f}: size 180x200 differs from img11.jpg (200x200) in the same video"


def test_no_face_in_one_frame_falls_back_with_a_warning(face_tree, tmp_path):
    root = shutil.copytree(face_tree, tmp_path / "t")
    idx = _index(root)
    f = idx[0].frames[2]
    cv2.imwrite(str(f), np.full((200, 200, 3), 128, np.uint8))
    with pytest.warns(PrepareWarning) as w:
        s = prepare_index(idx, tmp_path / "p", SMALL, workers=1, progress=False)
    msgs = [str(x.message) for x in w]
    assert f"{f}: no face found; used the face box of {idx[0].frames[1].name}" in msgs
    assert len(s["done"]) == 2
    man = json.loads((tmp_path / "p" / "videos" / video_dir_name(idx[0]) / "manifest.json").read_text())
    assert man["fallback_frames"] == [str(f)]
    found = np.load(tmp_path / "p" / "videos" / video_dir_name(idx[0]) / "face_found.npy")
    assert found.tolist() == [True, True, False] + [True] * 5


def test_no_face_anywhere(tmp_path):
    from mol_edu.datasets import write_demo_tree
    root = write_demo_tree(tmp_path / "noise", "casme2", subjects=1, videos=1, frames=8, size=(60, 60))
    idx = _index(root)
    with pytest.raises(PrepareError) as e:
        prepare_video(idx[0], tmp_path / "p", idx.classes, SMALL)
    assert str(e.value) == f"{idx[0].frames[0].parent}: no face found in any of its 8 frames"


def test_too_short_video(face_tree, tmp_path):
    idx = _index(face_tree)
    rec = idx[0]
    rec.frames = rec.frames[:6]
    with pytest.raises(PrepareError, match="needs at least 8 frames for one clip, it has 6"):
        prepare_video(rec, tmp_path / "p", idx.classes, SMALL)
    s = prepare_index(type(idx)(idx.name, idx.protocol, idx.classes, [rec]), tmp_path / "p", SMALL, workers=1,
                      progress=False)
    assert s["skipped"] == [(rec.key, "6 frames < 8")]


def test_dataset_on_a_folder_that_is_not_a_cache(tmp_path):
    with pytest.raises(PrepareError, match="not a prepared cache"):
        PreparedDataset(tmp_path)
    (tmp_path / "videos").mkdir()
    with pytest.raises(PrepareError, match="holds no prepared videos"):
        PreparedDataset(tmp_path)


def test_bad_settings():
    with pytest.raises(ValueError, match="crop_size must be in"):
        PrepareSettings(align_size=64, crop_size=72)
    with pytest.raises(ValueError, match="flow_dtype must be"):
        PrepareSettings(flow_dtype="int8")


def _cli(*args, cwd):
    return subprocess.run([str(BIN / "mol-prepare"), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_cli_bad_dataset_and_bad_layout_give_one_line(tmp_path):
    r = _cli("casme3", tmp_path, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "mol-prepare: error: dataset: expected one of ['casme2', 'samm', 'smic', 'release'], got 'casme3'"
    (tmp_path / "empty").mkdir()
    r = _cli("samm", tmp_path / "empty", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"mol-prepare: error: SAMM: expected SAMM/<006>/<006_1_2>/<006_05562>.jpg under "
                                f"{tmp_path / 'empty'}, found an empty folder")


@pytest.mark.slow
def test_cli_end_to_end_parallel_and_resumable_after_a_real_kill(tmp_path):
    import signal
    import time
    root = write_face_tree(tmp_path / "casme2", "casme2", subjects=4, videos=1, frames=16)
    out = tmp_path / "prep"
    p = subprocess.Popen([str(BIN / "mol-prepare"), "casme2", str(root), "--out", str(out), "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < 300 and not any((out / "videos").glob("casme2__*")):
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)  # the whole run, workers included
    p.wait()
    before = sorted(d.name for d in (out / "videos").glob("casme2__*"))
    assert 1 <= len(before) < 4
    r = _cli("casme2", root, "--out", out, "--workers", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"4 videos: {4 - len(before)} prepared, {len(before)} already up to date, 0 skipped" in r.stdout
    assert sorted(d.name for d in (out / "videos").iterdir()) == [f"casme2__sub0{i}__EP01_01f" for i in range(1, 5)]
    ds = PreparedDataset(out)
    assert len(ds) == 8 and ds[7]["clip"].shape == (1, 8, 128, 128)


# --- evidence on a synthetic corpus with exact ground truth (mol_edu.synthetic) ---------------------------------

NME_MAX = 0.05  # landmark error / outer-corner distance (measured about 0.018)
EPE_FRACTION_MAX = 0.5  # flow EPE must be under half the EPE of predicting zero flow (measured about 0.2)


def _check_agreement(agree, n_videos, epe_max):
    assert agree["videos"] == n_videos
    assert (agree["labels_match"], agree["subjects_match"]) == (n_videos, n_videos)
    assert agree["nme_outer_corners_mean"] < NME_MAX, agree
    assert agree["epe_mean"] < epe_max, agree
    assert agree["epe_mean"] < EPE_FRACTION_MAX * agree["zero_flow_epe_mean"], agree


def test_prepared_synthetic_corpus_agrees_with_its_ground_truth(tmp_path):
    from mol_edu.prepare import ground_truth_agreement
    from mol_edu.synthetic import SynthConfig, write_casme2_corpus
    corpus = write_casme2_corpus(tmp_path / "synth", subjects=1, videos_per_class=1, seed=3,
                                 cfg=SynthConfig(view="canvas", size=192, n_frames=(8, 8)), progress=False)
    idx = _index(corpus)
    assert len(idx) == 5 and idx.subjects == ["sub01"]
    sheet_labels = {r.video: idx.classes[r.label] for r in idx}
    for r in idx:  # the reader's labels, subjects and onsets agree with the generator's record
        g = np.load(corpus / "ground_truth" / r.subject / f"{r.video}.npz", allow_pickle=False)
        assert (str(g["classname"]), str(g["subject"]), int(g["onset"]), int(g["apex"])) == \
            (sheet_labels[r.video], r.subject, r.onset, r.apex)
    s = prepare_index(idx, tmp_path / "prep", SMALL, workers=1, progress=False)
    assert len(s["done"]) == 5
    _check_agreement(ground_truth_agreement(tmp_path / "prep", corpus), 5, epe_max=0.15)  # px at 72x72


@pytest.mark.slow
def test_mol_synth_then_mol_prepare_end_to_end(tmp_path):
    from mol_edu.prepare import ground_truth_agreement
    r = subprocess.run([str(BIN / "mol-synth"), str(tmp_path / "synth"), "--subjects", "2", "--seed", "1"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    r = _cli("casme2", tmp_path / "synth", "--out", tmp_path / "prep", "--workers", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "10 videos: 10 prepared, 0 already up to date, 0 skipped" in r.stdout
    agree = ground_truth_agreement(tmp_path / "prep", tmp_path / "synth")
    print({k: v for k, v in agree.items() if k != "per_video"})
    _check_agreement(agree, 10, epe_max=0.3)  # px at 144x144


def test_bench_prepare_keeps_the_earlier_runs_of_its_command(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_prepare import earlier_runs
    env = {"git_commit": "abc1234", "cpu": "AMD EPYC", "cpu_capability": "AVX2"}
    rows = [{"detection": "once, box follows", "minutes_255_videos": 15.8}]
    older = {"date": "2026-12-01", "git_commit": "0000000", "minutes_255_videos": {"once, box follows": 20.0}}
    run = {"command": "python benchmarks/bench_prepare.py --videos 8", "date": "2026-12-03", "note": "quiet", "rows": rows,
           "earlier": [older], "environment": env, "load_average": [[0.5, 0, 0], [1.5, 0, 0]]}
    path = tmp_path / "speed.json"
    assert earlier_runs(path, run["command"]) == []                       # no file yet
    path.write_text(json.dumps(run))
    kept = earlier_runs(path, run["command"])
    assert [e["date"] for e in kept] == ["2026-12-03", "2026-12-01"]     # the run in the file first, then its own history
    assert kept[0]["minutes_255_videos"] == {"once, box follows": 15.8} and kept[0]["cpu_capability"] == "AVX2"
    assert kept[0]["load_average"] == [0.5, 1.5]
    assert earlier_runs(path, run["command"] + " --work") == []           # another command's runs are not comparable
