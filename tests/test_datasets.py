"""Readers of mol_edu.datasets on small fabricated trees: the good path and the bad inputs users meet."""
import shutil
import warnings

import pandas as pd
import pytest

from mol_edu.datasets import (DatasetLayoutError, DatasetWarning, PROTOCOLS, frame_number, list_frames, megc2019,
                              parse_action_units, read_casme2, read_release_layout, read_samm, read_smic,
                              write_demo_tree)


@pytest.fixture
def casme2(tmp_path):
    return write_demo_tree(tmp_path / "casme2", "casme2", subjects=3, videos=2, frames=10, size=(8, 8))


def _sheet(root):
    return pd.read_excel(root / "CASME2-coding-20140508.xlsx", dtype=object)


def _write(df, root, name="edited.xlsx"):
    df.to_excel(root / name, index=False)
    return root / name


def _read(fn, *args, **kw):
    "Run a reader, return (result, list of warning messages); every warning must be a single line."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    msgs = [str(x.message) for x in w if issubclass(x.category, DatasetWarning)]
    assert all("\n" not in m for m in msgs), msgs
    return out, msgs


def _one_line(excinfo):
    assert "\n" not in str(excinfo.value), str(excinfo.value)
    return str(excinfo.value)


# --- the good path ---------------------------------------------------------------------------------------------

def test_casme2_reads_every_field(casme2):
    idx, msgs = _read(read_casme2, casme2)
    assert msgs == []
    assert len(idx) == 6 and idx.subjects == ["sub01", "sub02", "sub03"]
    r = idx[0]
    assert (r.dataset, r.subject, r.video, r.emotion) == ("casme2", "sub01", "EP01_01f", "disgust")
    assert (r.onset, r.apex, r.offset, r.action_units) == (11, 14, 20, "4+L10")
    assert idx.classes == PROTOCOLS[("casme2", "5class")]["classes"] and idx.classes[r.label] == "disgust"
    assert [frame_number(f) for f in r.frames] == list(range(11, 21))
    assert r.source == "CASME2-coding-20140508.xlsx row 2"


def test_frames_sorted_numerically_not_by_listing(tmp_path):
    for n in [100, 9, 10, 1000, 11]:
        (tmp_path / f"img{n}.jpg").write_bytes(b"x")
    assert [frame_number(p) for p in list_frames(tmp_path)] == [9, 10, 11, 100, 1000]


def test_release_layout_gives_the_same_ids_as_the_original(tmp_path, casme2):
    rel, _ = _read(read_release_layout, write_demo_tree(tmp_path / "data", "release", subjects=3, videos=2,
                                                         size=(8, 8)))
    orig, _ = _read(read_casme2, casme2)
    assert {r.key: rel.classes[r.label] for r in rel} == {r.key: orig.classes[r.label] for r in orig}


def test_megc2019_namespaces_subjects_and_uses_official_order(tmp_path, casme2):
    samm = write_demo_tree(tmp_path / "samm", "samm", subjects=2, videos=3, size=(8, 8))
    smic = write_demo_tree(tmp_path / "smic", "smic", subjects=2, videos=3, size=(8, 8))
    full, _ = _read(megc2019, read_casme2(casme2, protocol="3class"), read_samm(samm, protocol="3class"),
                    read_smic(smic))
    assert full.classes == ["negative", "positive", "surprise"]
    assert set(full.subjects) >= {"casme2/sub01", "samm/006", "smic/s1"}
    for r in full:
        assert r.subject.startswith(r.dataset + "/")
    surprise = [r for r in full if r.emotion == "surprise"]
    assert surprise and all(r.label == 2 for r in surprise)


def test_megc2019_drops_the_two_unofficial_casme2_samples(tmp_path):
    root = write_demo_tree(tmp_path / "c", "casme2", subjects=5, videos=1, size=(8, 8))
    df = _sheet(root)
    # rename sub04's video to the one the official list leaves out, keeping its folder in step
    old = df.loc[df.Subject == 4, "Filename"].iloc[0]
    (root / "CASME2_RAW_selected" / "sub04" / old).rename(root / "CASME2_RAW_selected" / "sub04" / "EP12_01f")
    df.loc[df.Subject == 4, "Filename"] = "EP12_01f"
    df.loc[df.Subject == 4, "Estimated Emotion"] = "disgust"
    idx, _ = _read(read_casme2, root, sheet=_write(df, root), protocol="3class")
    assert any(r.video == "EP12_01f" for r in idx)
    full = megc2019(casme2=idx)
    assert not any(r.video == "EP12_01f" for r in full)
    assert ("casme2/sub04/EP12_01f", "not in the official MEGC2019 list") in full.skipped


def test_megc2019_refuses_a_5class_index(casme2):
    with pytest.raises(ValueError, match="protocol='3class'") as e:
        megc2019(casme2=read_casme2(casme2))
    _one_line(e)


# --- bad input: roots and layouts -----------------------------------------------------------------------------

def test_missing_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist") as e:
        read_casme2(tmp_path / "nope")
    _one_line(e)


def test_root_is_a_file(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match="is a file"):
        read_samm(tmp_path / "f.txt")


def test_wrong_layout_says_expected_and_found(tmp_path, casme2):
    smic = write_demo_tree(tmp_path / "smic", "smic", subjects=1, videos=1, size=(8, 8))
    with pytest.raises(DatasetLayoutError) as e:
        read_casme2(smic)  # a SMIC tree handed to the CASME II reader
    msg = _one_line(e)
    assert "expected CASME2_RAW_selected/subXX/EPxx_yy/img<N>.jpg" in msg and "found HS/" in msg


def test_empty_root(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="found an empty folder"):
        read_smic(tmp_path / "empty")


def test_no_coding_sheet(casme2):
    (casme2 / "CASME2-coding-20140508.xlsx").unlink()
    with pytest.raises(DatasetLayoutError, match="no coding sheet matching CASME2-coding-") as e:
        read_casme2(casme2)
    _one_line(e)


def test_sheet_with_missing_columns(casme2):
    sheet = _write(_sheet(casme2).drop(columns=["Estimated Emotion", "OnsetFrame"]), casme2)
    with pytest.raises(DatasetLayoutError, match=r"lacks column\(s\) \['OnsetFrame', 'Estimated Emotion'\]") as e:
        read_casme2(casme2, sheet=sheet)
    assert "found ['Subject', 'Filename'" in _one_line(e)


def test_release_layout_with_wrong_folder_name(tmp_path):
    (tmp_path / "data" / "CASME_data_7" / "happy").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="expected a folder named like CASME2_data_5"):
        read_release_layout(tmp_path / "data")


# --- bad input: rows ---------------------------------------------------------------------------------------------

def test_unknown_emotion_warns_with_row_and_is_left_out(casme2):
    df = _sheet(casme2)
    df.loc[2, "Estimated Emotion"] = "joyful"
    idx, msgs = _read(read_casme2, casme2, sheet=_write(df, casme2))
    assert len(idx) == 5
    assert any(m.startswith("edited.xlsx row 4: unknown emotion 'joyful'") for m in msgs), msgs
    assert ("edited.xlsx row 4", "unknown emotion 'joyful'") in idx.skipped


def test_apex_written_as_slash(casme2):
    df = _sheet(casme2)
    df.loc[0, "ApexFrame"] = "/"
    idx, msgs = _read(read_casme2, casme2, sheet=_write(df, casme2))
    assert idx[0].apex is None and idx[0].onset == 11
    assert msgs == ["edited.xlsx row 2: ApexFrame is '/' (missing); kept as None"]


def test_action_unit_strings():
    assert parse_action_units("4+L10") == [(4, ""), (10, "L")]
    assert parse_action_units("R12A+14") == [(12, "R"), (14, "")]
    assert parse_action_units("1/2") == [(1, ""), (2, "")]
    assert parse_action_units(None) == [] and parse_action_units("?") == []
    with pytest.warns(DatasetWarning, match=r"row 3: cannot read action unit 'AU\?x'"):
        assert parse_action_units("4+AU?x", where="row 3") == [(4, "")]


def test_off_by_one_offset_is_clamped_with_a_warning(casme2):
    df = _sheet(casme2)
    df.loc[1, "OffsetFrame"] = 31  # frames are img21..img30
    df.loc[2, "OnsetFrame"] = 2  # frames are img12..img21: far outside
    idx, msgs = _read(read_casme2, casme2, sheet=_write(df, casme2))
    assert idx[1].offset == 30 and idx[2].onset == 12
    assert "edited.xlsx row 3: offset frame 31 is off by one (frames 21..30); clamped to 30" in msgs
    assert any("row 4: onset frame 2 is outside the frames on disk" in m for m in msgs)


def test_apex_outside_range_warns(casme2):
    df = _sheet(casme2)
    df.loc[0, "ApexFrame"] = 99
    _, msgs = _read(read_casme2, casme2, sheet=_write(df, casme2))
    assert any("row 2: apex 99 lies outside onset..offset 11..20" in m for m in msgs)


def test_duplicate_ids(casme2):
    df = _sheet(casme2)
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    idx, msgs = _read(read_casme2, casme2, sheet=_write(df, casme2))
    assert len(idx) == 6
    assert "edited.xlsx row 8: duplicate id sub01/EP01_01f (first on edited.xlsx row 2); row left out" in msgs


def test_subjects_with_no_samples(casme2):
    (casme2 / "CASME2_RAW_selected" / "sub18" / "EP01_01f").mkdir(parents=True)  # on disk, not in the sheet
    df = _sheet(casme2)
    df.loc[df.Subject == 3, "Estimated Emotion"] = "fear"  # sub03 keeps only samples outside 5-class
    idx, msgs = _read(read_casme2, casme2, sheet=_write(df, casme2))
    assert "sub03" not in idx.subjects
    assert "casme2: subjects with no samples under 5class: sub03, sub18" in msgs


def test_every_row_unusable_is_an_error(casme2):
    df = _sheet(casme2)
    df["Estimated Emotion"] = "fear"
    with pytest.raises(DatasetLayoutError, match="no usable samples") as e, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_casme2(casme2, sheet=_write(df, casme2))
    _one_line(e)


# --- bad input: videos ---------------------------------------------------------------------------------------

def test_empty_and_short_videos_are_left_out(casme2):
    v1 = casme2 / "CASME2_RAW_selected" / "sub01" / "EP01_01f"
    for f in v1.iterdir():
        f.unlink()
    v2 = casme2 / "CASME2_RAW_selected" / "sub02" / "EP01_01f"
    for f in sorted(v2.iterdir(), key=frame_number)[5:]:
        f.unlink()
    idx, msgs = _read(read_casme2, casme2)
    assert len(idx) == 4
    assert any(f"{v1} has 0 frames, fewer than 8" in m for m in msgs)
    assert any(f"{v2} has 5 frames, fewer than 8" in m for m in msgs)


def test_missing_video_folder(casme2):
    shutil.rmtree(casme2 / "CASME2_RAW_selected" / "sub02" / "EP02_01f")
    idx, msgs = _read(read_casme2, casme2)
    assert len(idx) == 5
    assert any(m.startswith("CASME2-coding-20140508.xlsx row 5: video folder") and "not found" in m for m in msgs)


def test_two_files_with_the_same_frame_number(casme2):
    v = casme2 / "CASME2_RAW_selected" / "sub01" / "EP01_01f"
    shutil.copy(v / "img12.jpg", v / "img012.jpg")
    idx, msgs = _read(read_casme2, casme2)
    assert "EP01_01f" not in [r.video for r in idx if r.subject == "sub01"]
    assert any("several files carry the same frame number [12]" in m for m in msgs)


# --- SAMM and SMIC specifics --------------------------------------------------------------------------------

def test_samm_header_on_row_14_and_subject_padding(tmp_path):
    root = write_demo_tree(tmp_path / "samm", "samm", subjects=2, videos=2, size=(8, 8))
    raw = pd.read_excel(root / "SAMM_Micro_FACS_Codes_v2.xlsx", header=None)
    assert list(raw.iloc[13, :2]) == ["Subject", "Filename"]  # row 14 in Excel's numbering
    idx, msgs = _read(read_samm, root)
    assert msgs == [] and idx.subjects == ["006", "007"]  # pandas reads "006" as 6; re-padded
    assert idx[0].source == "SAMM_Micro_FACS_Codes_v2.xlsx row 15"
    assert (idx[0].video, idx[0].action_units, idx[0].onset) == ("006_1_1", "R14A", 5100)


def test_samm_header_elsewhere_and_missing(tmp_path):
    root = write_demo_tree(tmp_path / "samm", "samm", subjects=1, videos=2, size=(8, 8))
    table = pd.read_excel(root / "SAMM_Micro_FACS_Codes_v2.xlsx", header=13)
    moved = root / "moved.xlsx"
    with pd.ExcelWriter(moved) as xw:
        table.to_excel(xw, index=False, startrow=3)  # header on row 4 of a re-saved sheet
    idx, _ = _read(read_samm, root, sheet=moved)
    assert len(idx) == 2 and idx[0].source == "moved.xlsx row 5"
    headless = root / "headless.xlsx"
    table.to_excel(headless, index=False, header=False)
    with pytest.raises(DatasetLayoutError, match="no header row with 'Subject' and 'Filename'") as e:
        read_samm(root, sheet=headless)
    _one_line(e)


def test_samm_unknown_emotion(tmp_path):
    root = write_demo_tree(tmp_path / "samm", "samm", subjects=1, videos=3, size=(8, 8))
    table = pd.read_excel(root / "SAMM_Micro_FACS_Codes_v2.xlsx", header=13, dtype=object)
    table.loc[1, "Estimated Emotion"] = "Boredom"
    table.to_excel(root / "s.xlsx", index=False)
    idx, msgs = _read(read_samm, root, sheet=root / "s.xlsx")
    assert len(idx) == 2 and any(m.startswith("s.xlsx row 3: unknown emotion 'Boredom'") for m in msgs)


def test_smic_unknown_emotion_folder_and_subject_without_samples(tmp_path):
    root = write_demo_tree(tmp_path / "smic", "smic", subjects=2, videos=2, size=(8, 8))
    (root / "HS" / "s2" / "micro" / "negative").rename(root / "HS" / "s2" / "micro" / "angry")
    (root / "HS" / "s3" / "micro").mkdir(parents=True)
    idx, msgs = _read(read_smic, root)
    assert any("unknown emotion folder 'angry'" in m for m in msgs)
    assert "smic: subjects with no samples: s3" in msgs
    assert all(r.apex is None for r in idx) and idx.classes == ["surprise", "positive", "negative"]


def test_smic_duplicate_clip_id(tmp_path):
    root = write_demo_tree(tmp_path / "smic", "smic", subjects=1, videos=3, size=(8, 8))
    micro = root / "HS" / "s1" / "micro"
    first, other = sorted(micro.iterdir())[:2]
    clip = next(first.iterdir())
    shutil.copytree(clip, other / clip.name)
    idx, msgs = _read(read_smic, root)
    assert any(f"duplicate id s1/{clip.name}" in m for m in msgs)
    assert [r.video for r in idx].count(clip.name) == 1


def test_release_layout_bad_video_name_and_extra_folder(tmp_path):
    root = write_demo_tree(tmp_path / "data", "release", subjects=2, videos=2, size=(8, 8))
    ds = root / "CASME2_data_5"
    shutil.copytree(next((ds / "disgust").iterdir()), ds / "disgust" / "EPxx_nosubject")
    (ds / "fear").mkdir()
    idx, msgs = _read(read_release_layout, root)
    assert any("EPxx_nosubject: cannot read the subject" in m for m in msgs)
    assert any("'fear' is not a class of casme2 5class" in m for m in msgs)
    assert len(idx) == 4
