"""The ablation, student, model-speed, demo-seeds, recipe-screen, key-frame, trained-amplitude and preparation paragraphs
of benchmarks/README.md, written from their results files (between markers).

    python benchmarks/readme_tables.py           # rewrite the paragraphs
    python benchmarks/readme_tables.py --check   # exit 1 if the README differs from what the results files say
"""
import json
import sys
from pathlib import Path

R = Path(__file__).resolve().parent
abl = json.loads((R / "ablations.json").read_text())
st = json.loads((R / "student.json").read_text())
pr = abl["protocol"]
def comparison_rows(abl: dict) -> str:
    "One table row per comparison of a bench_ablations results file."
    return "\n".join(f"| full vs {c['b']} | {c['uf1']['a']:.3f} / {c['uf1']['b']:.3f} | {c['uf1']['diff']:+.3f} | "
                     f"[{c['uf1']['low']:+.3f}, {c['uf1']['high']:+.3f}] | {c['permutation_p']:.4f} | "
                     f"{' '.join(f'{q:.3f}' for q in c['mcnemar_p'])} | {'yes' if c['real'] else 'no'} |" for c in abl["comparisons"])
rows = comparison_rows(abl)
secs = sum(r["seconds"] for r in abl["runs"])
A = f"""<!-- ablations -->
Ablations and baselines with power (results `benchmarks/ablations.json`, chapter 26): `python benchmarks/bench_ablations.py`
(the 7 MOL variants) and, side by side on the other core, `python benchmarks/bench_ablations.py --variants "3D CNN (baseline)"
"STSTNet (baseline, apex from the exact flow)" --out runs/abl_baselines.json`, joined by `{abl['command'].strip()}`:
every variant trained once per seed ({', '.join(map(str, abl['complete_seeds']))}) on the same 18 subjects of the demo
corpus (`cpu` recipe, {pr['iterations']} iterations, one thread), all tested on the same {len(abl['runs'][0]['videos'])} fresh
videos of the 6 unseen subjects {', '.join(pr['held_out'])} ({pr['test_videos_per_class']} per class and subject, data seed
{pr['test_data_seed']}); {len(abl['runs'])} runs, {secs / 60:.0f} min of training and testing on the shared 2-core AMD EPYC VM
(another benchmark ran on the other core). UF1 per video, full model (A) minus variant (B), 95 % interval by paired
bootstrap over the 6 test subjects, permutation test over subjects (with 6 subjects the smallest possible p is
2/64 = 0.031, which its Monte Carlo estimate reads as 0.030), McNemar's exact test per seed; "real" = both at 5 %.
The intervals cover the choice of test subjects, not of training seeds (the full model's three seeds give
{' / '.join(f'{x:.3f}' for x in abl['scores']['full']['uf1']['per_seed'])}):

| comparison | UF1 A / B | difference | 95 % interval | permutation p | McNemar p per seed | real |
|---|---|---|---|---|---|---|
{rows}
<!-- /ablations -->"""
S = st["students"]; te = st["teachers"]
f = lambda d: f"{d['mean']:.3f} ({d['min']:.3f}-{d['max']:.3f})"
B = f"""<!-- student -->
Students of the teachers, `{st['command'].strip()}` (results `benchmarks/student.json`, chapter 29c): the demo MOL
trained for {st['iterations']} iterations on every subject but {st['held_out_subject']}, with the exact flow and landmarks or
with TV-L1 (consecutive pairs) and dlib labels (dlib missed {te['dlib_missed_training_frames']} of the corpus's 15,768 frames;
each took its nearest found frame), seeds {', '.join(map(str, st['seeds']))}; scored on {st['clips']} fresh clips of
{st['held_out_subject']}, face pixels. Mean (min-max over seeds); teachers on the same clips: TV-L1 EPE
{te['flow_epe_to_truth']:.3f} px, zero flow {te['zero_flow_epe_to_truth']:.3f} px, dlib NME {te['dlib_nme_to_truth']:.4f}.

| student of | flow EPE to truth (px) | flow EPE to TV-L1 (px) | NME to truth | NME to dlib | UF1 per video |
|---|---|---|---|---|---|
""" + "\n".join(f"| {k} | {f(s['flow_epe_to_truth'])} | {f(s['flow_epe_to_tvl1'])} | {f(s['nme_to_truth'])} | {f(s['nme_to_dlib'])} | {f(s['uf1'])} |" for k, s in S.items()) + """
<!-- /student -->"""
ms = json.loads((R / "model_speed.json").read_text())
mo, pd = ms["model"], ms["predictors"]
mach = mo["machine"]
keys = [f"{r['threads']}/{r['variant']}" for r in mo["rows"]]
head = " | ".join(f"{k.split('/', 1)[0]} thr., {k.split('/', 1)[1]}" for k in keys)
mod_names = [n for n, v in mo["modules"][keys[0]]["shares"].items() if v >= 0.03]
mod_rows = "\n".join(f"| {n} | " + " | ".join(f"{100 * mo['modules'][k]['shares'].get(n, 0):.0f}%" for k in keys) + " |" for n in mod_names)
op_names = list(dict.fromkeys(n for k in keys for n in list(mo["ops"][k])[:6]))
op_rows = "\n".join(f"| {n} | " + " | ".join(f"{100 * mo['ops'][k].get(n, 0):.0f}%" for k in keys) + " |" for n in op_names)
variants = list(dict.fromkeys(r["variant"] for r in mo["rows"]))
worst = {v: max(max(r["x_roofline"].values()) for r in mo["rows"] if r["variant"] == v) for v in variants}
by = {(r["threads"], r["variant"]): r for r in mo["rows"]}
first, last = variants[0], variants[-1]
gain = ", ".join(f"{t} thread{'s' * (t > 1)}: forward b{B_} {by[t, first]['forward_bB_s_per_clip'] / by[t, last]['forward_bB_s_per_clip']:.2f}x, "
                 f"step {by[t, first]['step_s'] / by[t, last]['step_s']:.2f}x"
                 for t in dict.fromkeys(r["threads"] for r in mo["rows"]) for B_ in [mo["rows"][0]["batch"]])
pr_rows = "\n".join(f"| {r['level']} | {r['in_channels']} | {r['size']} x {r['size']} | {r['method']} | {r['fwd_ms']:.1f} | {r['fwd_bwd_ms']:.1f} |" for r in pd["rows"])
gf = mo["gflop_per_clip"]
bb = mo["rows"][0]["batch"]
M = f"""<!-- model_speed -->
**Before and after, in one run** — `{mo['command'].strip()}` (results `benchmarks/model_speed.json`, released preset,
fp32). Machine: {mach['cpu']} ({mach['cpu_capability']}), {mach['logical_cpus']} logical CPUs, torch {mach['torch']},
load average {mach['load_average_before'][0]:.2f} at the start, {mach['load_average_after'][0]:.2f} at the end. Roofline =
{gf['forward']:.1f} GFLOP per clip forward and {gf['forward_backward']:.1f} GFLOP forward + backward
(`torch.utils.flop_counter`, batch 1), divided by the median of the run's 2048x2048 fp32 GEMM rates at the same thread
count (one per round). Each figure is the median of {mo['repeats']} rounds; within a round every predictor method runs
once in turn, and the two malloc policies run one after the other. Training step = stand-in joint loss + backward +
AdamW, batch {bb}. Variant = predictor / malloc: `conv` is the plain `conv2d` predictor, `gemm` the matrix product +
col2im (chapter 05, now the default on a CPU); `default` is glibc's malloc as it comes, `reuse` is
`mol_edu.core.reuse_freed_memory()` (chapter 00, which `mol-train` now calls on a CPU). `conv/default` is the code as it
was before, `gemm/reuse` what `mol-train` runs now.

| threads | variant | GEMM GFLOP/s | forward b1 (s/clip) | forward b{bb} (s/clip) | step b{bb} (s) | x roofline: fwd b1 / fwd b{bb} / step | page faults per step |
|---|---|---|---|---|---|---|---|
""" + "\n".join(f"| {r['threads']} | {r['variant']} | {r['gemm_gflops']:.0f} | {r['forward_b1_s']:.3f} | {r['forward_bB_s_per_clip']:.3f} | {r['step_s']:.2f} | {r['x_roofline']['forward_b1']:.2f} / {r['x_roofline']['forward_bB']:.2f} / {r['x_roofline']['step']:.2f} | {r['page_faults']['step']:,.0f} |" for r in mo["rows"]) + """

Largest x roofline over the six figures of each variant (target: at most 1.5): """ + ", ".join(f"{v} {w:.2f}" for v, w in worst.items()) + f""".
Speed-up of {last} over {first}: {gain}.

Forward of one clip by module (share of its time, module hooks; nested rows are inside `flow_head`):

| module | {head} |
|---|{'---|' * len(keys)}
{mod_rows}

One training step by operator (share of the profiler's self time, batch {bb}):

| operator | {head} |
|---|{'---|' * len(keys)}
{op_rows}

The predictors alone, `{pd['command'].strip()}` ({pd['pairs']} pairs = batch {pd['pairs'] // 7} clips, {pd['threads']} thread,
median of {pd['repeats']} alternating rounds; levels 6 and 5 take well under a millisecond and are left out):

| level | C in | size | method | forward (ms) | forward + backward (ms) |
|---|---|---|---|---|---|
{pr_rows}
<!-- /model_speed -->"""
sd = json.loads((R / "ablations_sides.json").read_text())
sp = sd["protocol"]
SD = f"""<!-- ablations_sides -->
Distant relations only (results `benchmarks/ablations_sides.json`, chapter 26): the same protocol on chapter 10b's
`scheme="sides"` corpus ({sp['corpus']}), where "same side" and "opposite sides" differ only in whether the moving
brow and lip corner are on the same half of the face; `{sd['command'].strip()}` joins two processes' runs (their
commands are in chapter 26). Seeds {', '.join(map(str, sd['complete_seeds']))}, {sp['iterations']} iterations, {len(sd['runs'][0]['videos'])}
fresh test videos of {', '.join(sp['held_out'])}; columns as above:

| comparison | UF1 A / B | difference | 95 % interval | permutation p | McNemar p per seed | real |
|---|---|---|---|---|---|---|
{comparison_rows(sd)}

UF1 of the {len(sd['scores'])} variants: {min(v['uf1']['mean'] for v in sd['scores'].values()):.3f} to {max(v['uf1']['mean'] for v in sd['scores'].values()):.3f} (guessing among 3 classes: 0.333);
{'none' if not any(c['real'] for c in sd['comparisons']) else 'some'} of the differences real. Chapter 26 adds the pair accuracy (same against opposite side), which stays below 0.5 for every variant.
<!-- /ablations_sides -->"""
def recheck_note(ds: dict, path: Path) -> str:
    "A later run of some of the seeds (bench_demo_seeds.py --out demo_seeds_recheck.json): the same numbers, or which differ."
    if not path.exists(): return ""
    rc = json.loads(path.read_text())
    keep = lambda r: (r["video"], r["clip"], r["epe"], r["nme_outer_corners"])
    first = {r["seed"]: r for r in ds["runs"]}
    same = [r["seed"] for r in rc["runs"] if r["seed"] in first and keep(r) == keep(first[r["seed"]])]
    other = [r["seed"] for r in rc["runs"] if r["seed"] in first and r["seed"] not in same]
    e = rc["environment"]
    return (f"\n\nRe-run later (`benchmarks/demo_seeds_recheck.json`: seed{'s' * (len(rc['runs']) > 1)} {', '.join(str(r['seed']) for r in rc['runs'])},"
            f" {rc['threads']} thread{'s' * (rc['threads'] != 1)} per run, code {e['git_commit'][:7]}, on a host of the same kind: {e['cpu']}, {e['cpu_capability']}, torch {e['torch']}):"
            + (f" every score of seed{'s' * (len(same) > 1)} {', '.join(map(str, same))} is identical to all digits (UF1 per video"
               f" {first[same[0]]['video']['uf1']:.6f}, EPE {first[same[0]]['epe']:.6f} px)" if same else "")
            + (f"{';' if same else ''} seed{'s' * (len(other) > 1)} {', '.join(map(str, other))} scored otherwise" if other else "")
            + (". On one kind of host the run is deterministic; for the spread between hosts see the recipe screens below." if same and not other
               else ": the run is not reproducible even on one kind of host."))

ds = json.loads((R / "demo_seeds.json").read_text())
de, uv = ds["environment"], ds["uf1_video"]
worst = min(ds["runs"], key=lambda r: r["video"]["uf1"])
loads = [x[0] for x in ds["load_average"]]
D = f"""<!-- demo_seeds -->
Spread over training seeds (`.venv/bin/python benchmarks/bench_demo_seeds.py --threads 1`, run as two processes side by
side, `--seeds 2024 2025 2026` and `--seeds 2027 2028` with their own `--out`/`--runs`, then joined with `--merge`;
results in `benchmarks/demo_seeds.json`). Same corpus (data seed 0), same folds ({', '.join(ds['runs'][0]['folds'])}), only the
training seed changes; one thread per run on the shared {de['cpu']} VM ({de['cpu_capability']}, torch {de['torch']}, code
{de['git_commit'][:7]}{'+changes' if de['git_commit'].endswith('+dirty') else ''}; load average {min(loads):.1f}-{max(loads):.1f}).

| training seed | UF1 per video | ACC per video | UF1 per clip | EPE (px) | NME (outer eye corners) | wall time |
|---|---|---|---|---|---|---|
""" + "\n".join(f"| {r['seed']} | {r['video']['uf1']:.3f} | {r['video']['acc']:.3f} | {r['clip']['uf1']:.3f} | {r['epe']:.3f} | {r['nme_outer_corners']:.4f} | {r['wall_seconds']:.0f} s |" for r in ds["runs"]) + f"""

UF1 per video over {uv['n']} seeds: mean {uv['mean']:.3f}, min {uv['min']:.3f}, max {uv['max']:.3f}. The bar of a worst seed above 0.6 is
**{'met' if uv['min'] > 0.6 else 'not met'}** at this budget (seed {worst['seed']}: {worst['video']['uf1']:.3f}); the single-run figures below are one draw from this spread.{recheck_note(ds, R / "demo_seeds_recheck.json")}
<!-- /demo_seeds -->"""
def host_seeds_block(tag: str, other: dict, base: dict) -> str:
    "The demo's seeds on a host of another kind (bench_demo_seeds.py, results benchmarks/<tag>.json), seed by seed beside the first host's."
    oe, be, ou = other["environment"], base["environment"], other["uf1_video"]
    assert other["extra"] == base["extra"], f"{tag}: another recipe than demo_seeds.json's"
    first = {r["seed"]: r for r in base["runs"]}
    common = [r for r in other["runs"] if r["seed"] in first]
    d = [r["video"]["uf1"] - first[r["seed"]]["video"]["uf1"] for r in common]
    worst = min(other["runs"], key=lambda r: r["video"]["uf1"])
    loads = [x[0] for x in other["load_average"]] if isinstance(other["load_average"][0], list) else [other["load_average"][0]]
    same_host = oe["cpu_capability"] == be["cpu_capability"]
    return f"""<!-- {tag} -->
The same seeds on a host of {'the same' if same_host else 'another'} kind (`.venv/bin/python benchmarks/bench_demo_seeds.py --threads 1 --out benchmarks/{tag}.json`,
the seeds split over two processes and joined with `--merge`; {oe['cpu']}, {oe['cpu_capability']}, torch {oe['torch']}, code {oe['git_commit'][:7]}; load
average {min(loads):.1f}-{max(loads):.1f}): the same command, corpus and folds as the table above, only the processor differs ({be['cpu_capability']} above).

| training seed | UF1 per video ({oe['cpu_capability']}) | UF1 per video ({be['cpu_capability']}) | difference | ACC per video | UF1 per clip | EPE (px) | NME (outer eye corners) | wall time |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(f"| {r['seed']} | {r['video']['uf1']:.3f} | " + (f"{first[r['seed']]['video']['uf1']:.3f} | {r['video']['uf1'] - first[r['seed']]['video']['uf1']:+.3f} | " if r['seed'] in first else "- | - | ")
                + f"{r['video']['acc']:.3f} | {r['clip']['uf1']:.3f} | {r['epe']:.3f} | {r['nme_outer_corners']:.4f} | {r['wall_seconds']:.0f} s |" for r in other["runs"]) + f"""

On this host, UF1 per video over {ou['n']} seeds: mean {ou['mean']:.3f}, min {ou['min']:.3f}, max {ou['max']:.3f}; the bar of a worst seed above 0.6 is
**{'met' if ou['min'] > 0.6 else 'not met'}** here (seed {worst['seed']}: {worst['video']['uf1']:.3f}). Seed by seed the two hosts differ by {sum(map(abs, d)) / len(d):.3f} on average
(largest {max(map(abs, d)):.3f}){', while the means differ by ' + f"{ou['mean'] - base['uf1_video']['mean']:+.3f}" if d else ''}: each host's CPU kernels add in their own order, training
carries the rounding into other weights, and so a single run's score is reproducible only on the same kind of processor.
The spread over seeds, not any one run, is what a user on another machine should expect.
<!-- /{tag} -->"""

def confirm_block(tag: str, cf: dict, base: dict) -> str:
    "A recipe's confirmation on the demo's corpus (bench_demo_seeds.py --extra ...), paired seed by seed with the demo's runs."
    ce, cu, opts = cf["environment"], cf["uf1_video"], " ".join(cf["extra"])
    first = {r["seed"]: r["video"]["uf1"] for r in base["runs"]}
    d = [r["video"]["uf1"] - first[r["seed"]] for r in cf["runs"] if r["seed"] in first]
    worst = min(cf["runs"], key=lambda r: r["video"]["uf1"])
    same_host = ce["cpu_capability"] == base["environment"]["cpu_capability"] and ce["torch"] == base["environment"]["torch"]
    joined = "the seeds split over processes with their own `--out`, joined with `--merge`" if isinstance(cf["load_average"][0], list) else "one process"
    return f"""<!-- {tag} -->
The demo's recipe with `{opts}` on the demo's own corpus (`.venv/bin/python benchmarks/bench_demo_seeds.py --threads 1 --extra {opts}`,
{joined}; results `benchmarks/{tag}.json`; {ce['cpu']},
{ce['cpu_capability']}, torch {ce['torch']}, code {ce['git_commit'][:7]}; several runs shared the two cores, so no wall times):

| training seed | UF1 per video | ACC per video | UF1 per clip | EPE (px) | NME (outer eye corners) | minus the demo's recipe (same seed) |
|---|---|---|---|---|---|---|
""" + "\n".join(f"| {r['seed']} | {r['video']['uf1']:.3f} | {r['video']['acc']:.3f} | {r['clip']['uf1']:.3f} | {r['epe']:.3f} | "
                f"{r['nme_outer_corners']:.4f} | " + (f"{r['video']['uf1'] - first[r['seed']]:+.3f} |" if r['seed'] in first else "- |")
                for r in cf["runs"]) + f"""

UF1 per video over {cu['n']} seeds: mean {cu['mean']:.3f}, min {cu['min']:.3f}, max {cu['max']:.3f}; minus the demo's recipe
{sum(d) / len(d):+.3f} on average, ahead on {sum(x > 0 for x in d)} of {len(d)} seeds{' (both on the same kind of host, where a run is deterministic)' if same_host else ' (another kind of host than the demo runs: not a fair pairing)'}. The bar of a worst seed
above 0.6 is **{'met' if cu['min'] > 0.6 else 'not met'}** with it (seed {worst['seed']}: {worst['video']['uf1']:.3f}). {'It clears the bar and is ahead on average: the candidate for the demo default.' if cu['min'] > 0.6 and sum(d) > 0 else 'So the demo keeps its recipe.'}
<!-- /{tag} -->"""

def made_by(rs: dict) -> str:
    "The command of a screen, or for a merged one the commands of its parts and the merge."
    if not rs.get("parts"): return f"`{rs['command'].strip()}`"
    return "the runs of " + "; ".join(f"`{c.strip()}`" for c in rs["parts"]) + f", joined by `{rs['command'].strip()}`"

def screen_block(tag: str, rs: dict, extra: str = "") -> str:
    "The paragraph and table of one recipe screen (bench_recipe_screen.py's results file benchmarks/<tag>.json)."
    rs_base, rs_env = rs["candidates"][0]["name"], rs["environment"]
    rs_keys = sorted({(r["data_seed"], r["seed"]) for r in rs["runs"]})
    rs_uf1 = {(r["candidate"], r["data_seed"], r["seed"]): r["video"]["uf1"] for r in rs["runs"]}
    rs_diff = lambda n: rs["scores"][n].get("minus_" + rs_base)
    rs_ahead = [c["name"] for c in rs["candidates"][1:] if rs_diff(c["name"]) and rs_diff(c["name"])["low"] > 0]
    rs_b = rs["scores"][rs_base]
    return f"""<!-- {tag} -->
Screening recipes away from the demo's test videos: {made_by(rs)} (results `benchmarks/{tag}.json`).
Each recipe is the demo's with the options shown, trained with the same training seeds on the synthetic corpora of data
seeds {', '.join(str(d) for d in sorted({k[0] for k in rs_keys}))}: the demo's 24 identities and its 3 test subjects, but other videos (the demo's corpus, data
seed 0, is not used). One thread per run (several runs side by side: that changes wall times, not scores), on the shared {rs_env['cpu']} VM ({rs_env['cpu_capability']}, torch
{rs_env['torch']}). UF1 per video, and each recipe minus the demo's, paired run by run (95 % bootstrap interval over the pairs of
runs the two share, rough with so few), and the number of pairs it wins:

| recipe | options | """ + " | ".join(f"data seed {d}, seed {s}" for d, s in rs_keys) + f""" | mean | minus {rs_base} | wins |
|---|---|""" + "---|" * len(rs_keys) + """---|---|---|
""" + "\n".join(f"| {c['name']} | `{' '.join(c['options']) or '(none)'}` | " + " | ".join(
        f"{rs_uf1[(c['name'], d, s)]:.3f}" if (c['name'], d, s) in rs_uf1 else "-" for d, s in rs_keys)
        + f" | {rs['scores'][c['name']]['mean']:.3f} | " + (f"{rs_diff(c['name'])['mean']:+.3f} [{rs_diff(c['name'])['low']:+.3f}, "
        f"{rs_diff(c['name'])['high']:+.3f}] | {rs_diff(c['name'])['wins']}/{rs_diff(c['name'])['n']} |" if rs_diff(c['name']) else "- | - |")
        for c in rs["candidates"]) + f"""

The demo's recipe itself scores {rs_b['min']:.3f}-{rs_b['max']:.3f} on these corpora ({'every run above' if rs_b['min'] > 0.6 else 'not every run above'} 0.6).
{'Ahead of it with an interval clear of zero: ' + ', '.join(rs_ahead) + '; to be confirmed on the demo corpus with bench_demo_seeds.py before it becomes the default.' if rs_ahead else 'No recipe screened is ahead of it with an interval clear of zero, so the demo keeps its recipe.'}{extra}
<!-- /{tag} -->"""

def host_note(a: dict, b: dict) -> str:
    "The base recipe's runs that two screens share (same data and training seeds), side by side: what the host changes."
    uf1 = lambda x: {(r["data_seed"], r["seed"]): r["video"]["uf1"] for r in x["runs"] if r["candidate"] == x["candidates"][0]["name"]}
    ua, ub = uf1(a), uf1(b)
    keys = sorted(set(ua) & set(ub))
    if not keys: return ""
    d = [abs(ua[k] - ub[k]) for k in keys]
    ea, eb = a["environment"], b["environment"]
    ha, hb = f"{ea['cpu_capability']} host", f"{eb['cpu_capability']} host"
    torch_v = f"the same torch {ea['torch']}" if ea["torch"] == eb["torch"] else f"torch {ea['torch']} and {eb['torch']}"
    return (f"\n\nThe same runs on two hosts ({torch_v}; results files written at commits {ea['git_commit'][:7]} and"
            f" {eb['git_commit'][:7]}): the demo's recipe with the same data and training seeds, UF1 per video:"
            f"\n\n| data seed | training seed | {ha} | {hb} | difference |\n|---|---|---|---|---|\n"
            + "\n".join(f"| {k[0]} | {k[1]} | {ua[k]:.3f} | {ub[k]:.3f} | {ub[k] - ua[k]:+.3f} |" for k in keys)
            + f"\n\nMean absolute difference {sum(d) / len(d):.3f}, largest {max(d):.3f}. The hosts' CPU kernels add in other orders,"
              " training carries the rounding into other weights, and so a comparison of recipes is fair only between runs of one"
              " host, which is why this screen is its own file.")

RS = screen_block("recipe_screen", json.loads((R / "recipe_screen.json").read_text()))
DSA = (host_seeds_block("demo_seeds_avx2", json.loads((R / "demo_seeds_avx2.json").read_text()), ds)
       if (R / "demo_seeds_avx2.json").exists() else None)
# a recipe screened and confirmed on the AVX2 host: paired with that host's own runs of the demo's recipe
def screen_recheck(screen: dict, path: Path) -> str:
    "A later re-run of screen runs (bench_recipe_screen.py --out <path>): identical to all digits, or which differ."
    if not path.exists(): return ""
    rc, keep = json.loads(path.read_text()), lambda r: (r["video"], r["clip"], r["epe"], r["nme_outer_corners"])
    first = {(r["candidate"], r["data_seed"], r["seed"]): r for r in screen["runs"]}
    key = lambda r: (r["candidate"], r["data_seed"], r["seed"])
    same = [r for r in rc["runs"] if key(r) in first and keep(r) == keep(first[key(r)])]
    e, r = rc["environment"], rc["runs"][0]
    what = f"{r['candidate']} at data seed {r['data_seed']}, seed {r['seed']}"
    return (f" Its base runs were made earlier (code {screen['environment']['git_commit'][:7]}); {what} was re-run on this kind of host at code {e['git_commit'][:7]}"
            f" ({e['cpu_capability']}; `benchmarks/{path.name}`): "
            + (f"identical to all digits (UF1 per video {r['video']['uf1']:.6f}, EPE {r['epe']:.6f} px), so pairing with them is fair."
               if len(same) == len(rc["runs"]) else "it scored otherwise, so the pairing is not exact."))

RSM = (screen_block("recipe_screen_mirror", rsm := json.loads((R / "recipe_screen_mirror.json").read_text()),
                    "\nThis screen and the confirmation below ran side by side, so the confirmation was not chosen by it."
                    + screen_recheck(rsm, R / "recipe_screen_recheck.json"))
       if (R / "recipe_screen_mirror.json").exists() else None)
DSM = (confirm_block("demo_seeds_mirror", json.loads((R / "demo_seeds_mirror.json").read_text()),
                     json.loads((R / "demo_seeds_avx2.json").read_text()))
       if (R / "demo_seeds_mirror.json").exists() and (R / "demo_seeds_avx2.json").exists() else None)
DSI = (confirm_block("demo_seeds_iterations", json.loads((R / "demo_seeds_iterations.json").read_text()), ds)
       if (R / "demo_seeds_iterations.json").exists() else None)
# a screen on another host is its own file: runs are paired only with the demo's runs on the same host
RSI = (screen_block("recipe_screen_iterations", rsi := json.loads((R / "recipe_screen_iterations.json").read_text()),
                    host_note(json.loads((R / "recipe_screen.json").read_text()), rsi))
       if (R / "recipe_screen_iterations.json").exists() else None)
kf = json.loads((R / "keyframes.json").read_text())
km, km_env = kf["mol"], kf["machine"]
mol_min = [r["seconds"] / 60 for r in km["run_info"]]
kf_row = lambda c: (f"| {'MOL' if c['a'] == 'MOL' else c['a'].split('test ')[1]} vs {c['b']} | {c['uf1']['diff']:+.3f} | "
                    f"[{c['uf1']['low']:+.3f}, {c['uf1']['high']:+.3f}] | {c['permutation_p']:.4f} | {'yes' if c['real'] else 'no'} |")
base = kf["conditions"]["train sheet, test sheet+0"]["uf1"]
K = f"""<!-- keyframes -->
Key-frame robustness, `{kf['command'].strip()}`
(results `benchmarks/keyframes.json`, chapter 29b). Demo corpus, all {len(kf['folds'])} LOSO folds ({kf['videos']} test videos);
STSTNet on cached TV-L1 maps with the `cpu` recipe, {len(kf['seeds'])} training seeds ({', '.join(map(str, kf['seeds']))}), three training rules,
{kf['seconds']['folds'] / 60:.0f} min of training and testing in all. MOL from {len(km['run_info'])} `mol-train` runs of the demo's recipe, one per
training seed (`{km['run_info'][0]['command']}`,
and the same with seed{'s' * (len(km['run_info']) > 2)} {', '.join(str(r['seed']) for r in km['run_info'][1:])}; {min(mol_min):.0f}-{max(mol_min):.0f} min each). One thread per process, two processes side by side,
on the shared {km_env['logical_cpus']}-core {km_env['cpu']} VM ({km_env['cpu_capability']}, torch {km_env['torch']}). STSTNet on the correct sheet: UF1
{base['mean']:.3f} [{base['low']:.3f}, {base['high']:.3f}]; MOL ({len(km['scores']['uf1_per_seed'])} seeds: {' / '.join(f'{x:.3f}' for x in km['scores']['uf1_per_seed'])}):
{km['scores']['uf1']['mean']:.3f} [{km['scores']['uf1']['low']:.3f}, {km['scores']['uf1']['high']:.3f}]. Differences in per-video UF1 (A - B), 95 % interval by paired
bootstrap over subjects, permutation test over subjects (chapter 29a's `compare`; "real" = both at 5 %):

| comparison | UF1 difference | 95 % interval | permutation p | real |
|---|---|---|---|---|
""" + "\n".join(kf_row(c) for c in kf["comparisons"] + km["comparisons"]) + """
<!-- /keyframes -->"""
AMP = {1.0: abl, **{f: json.loads((R / f"ablations_amp{f:g}.json").read_text()) for f in (0.5, 0.25)}}
AMP_NAMES = {"full": "MOL", "3D CNN (baseline)": "3D CNN", "STSTNet (baseline, apex from the exact flow)": "STSTNet (oracle apex)"}
cell = lambda u: f"{u['mean']:.3f} [{u['low']:.3f}, {u['high']:.3f}]"
vs = lambda t, v: next(c for c in t["comparisons"] if c["b"] == v)
TA = f"""<!-- amplitude_trained -->
Trained at each level (results `benchmarks/ablations_amp0.5.json`, `benchmarks/ablations_amp0.25.json` and, at 1,
`benchmarks/ablations.json`, whose runs predate chapter 05's GEMM flow predictors, a change of rounding only; chapter 29d): `{AMP[0.25]['command'].strip()}`
and the same with `--amplitude 0.5`: chapter 26's held-out protocol with the amplitude range of the training *and* the
test videos scaled by the factor; seeds {', '.join(map(str, AMP[0.25]['complete_seeds']))}, {len(AMP[0.25]['runs'][0]['videos'])} fresh test videos of 6 unseen subjects; one thread,
another benchmark on the other core ({sum(r['seconds'] for f in (0.5, 0.25) for r in AMP[f]['runs']) / 60:.0f} min for the two new levels). UF1 per video with 95 % intervals over
the test subjects; MOL minus each baseline with its interval and permutation p ("real" = interval and test at 5 %):

| amplitude factor | MOL | 3D CNN | STSTNet (oracle apex) | MOL - 3D CNN | MOL - STSTNet |
|---|---|---|---|---|---|
""" + "\n".join(f"| {f:g} | " + " | ".join(cell(AMP[f]["scores"][v]["uf1"]) for v in AMP_NAMES) + " | " + " | ".join(
    f"{vs(AMP[f], v)['uf1']['diff']:+.3f} [{vs(AMP[f], v)['uf1']['low']:+.3f}, {vs(AMP[f], v)['uf1']['high']:+.3f}], p {vs(AMP[f], v)['permutation_p']:.3f}"
    f"{' (real)' if vs(AMP[f], v)['real'] else ''}" for v in list(AMP_NAMES)[1:]) + " |" for f in sorted(AMP)) + """
<!-- /amplitude_trained -->"""
ps = json.loads((R / "prepare_speed.json").read_text())
ps_env, ps_tv = ps["environment"], json.loads((R / "tvl1_prepare_host.json").read_text())
ps_by = {r["detection"]: r for r in ps["rows"]}
ps_e, ps_f, ps_1 = ps_by["every frame"], ps_by["once, box follows"], ps_by["once, first box"]
ps_rate = lambda r: ps["pairs_per_video"] / (r["shares"]["flow"] * r["seconds_per_video"])   # pairs/s, all workers
ps_tvb = {(r["mode"], r["method"]): r["pairs_per_s"] for r in ps_tv["rows"] if r["method"] == "opencv" or r["batch"] == 4}
ps_pairs = 255 * ps["pairs_per_video"]
ps_dx, ps_dy = ps["face_step_px"]; ps_step = (ps_dx ** 2 + ps_dy ** 2) ** 0.5
ps_old = ps.get("earlier", [])    # bench_prepare keeps the summaries of the earlier runs of its command
ps_met = sum(m <= 15 for m in [ps_f["minutes_255_videos"]] + [e["minutes_255_videos"]["once, box follows"] for e in ps_old])
ps_met = {0: "None", 1: "One"}.get(ps_met, str(ps_met))
ps_hist = (": the file keeps the earlier runs of the same command, and with the box following they took\n" + "; ".join(
    f"{e['minutes_255_videos']['once, box follows']:.1f} min ({e['date']}, {e['cpu_capability']}, code {e['git_commit'][:7]})" for e in ps_old)
    + f". {ps_met} of the {len(ps_old) + 1} runs on record {'meets' if ps_met == 'One' else 'meet'} the 15 minutes, so " if ps_old else ", so ")
# the reading below states these; a results file that broke them would change the prose, so it stops here instead
assert ps_1["tvl1_iterations_per_pair"] > 1.5 * ps_e["tvl1_iterations_per_pair"] and ps_1["pair_difference"] > 1.5 * ps_e["pair_difference"]
assert min(ps_1["seconds_per_video"], ps_e["seconds_per_video"]) > ps_f["seconds_per_video"]
ps_slow = ("so that preparation is the slowest of the three" if ps_1["seconds_per_video"] > ps_e["seconds_per_video"] else
           f"so that preparation takes {ps_1['seconds_per_video'] / ps_f['seconds_per_video']:.1f}x as long as with the box following")
assert abs(ps_f["tvl1_iterations_per_pair"] / ps_e["tvl1_iterations_per_pair"] - 1) < 0.1
PS = f"""<!-- prepare_speed -->
**Detecting once, and why it was slow** ({ps['date']}): `{ps['command']}` (results `benchmarks/prepare_speed.json`;
{ps_env['cpu']}, {ps_env['cpu_capability']}, torch {ps_env['torch']}, OpenCV {ps_env['opencv']}; load average
{ps['load_average'][0][0]:.2f} at the start and {ps['load_average'][1][0]:.2f} at the end; {ps['note'] or 'nothing else said about the machine'}). "once, first box"
is what `redetect=False` did before (`track=False` now): the detector's box of the first frame on every frame. "once,
box follows" is `redetect=False` now: each frame is registered to the first inside that box by phase correlation and
the box moves with it (`follow_box`, chapter 13a). The last two columns re-solve the clip pairs of the first two
prepared videos with `tvl1_flow_torch(..., stats=...)`: iterations per pair (summed over the pyramid) and the mean
absolute difference of the pair's two aligned frames (grey levels). "255 videos" = the wall time per video times 255:

| workers | face detection | flow | videos/min | s/video (wall) | detection | landmarks | alignment | TV-L1 | reading | 255 videos | TV-L1 iterations/pair | pair difference |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(f"| {r['workers']} | {r['detection']} | {r['flow']} | {r['videos_per_min']:.2f} | {r['seconds_per_video']:.1f} | "
                f"{100 * r['shares']['detect']:.0f}% | {100 * r['shares']['landmarks']:.1f}% | {100 * r['shares']['align']:.1f}% | "
                f"{100 * r['shares']['flow']:.0f}% | {100 * r['shares']['read']:.1f}% | {r['minutes_255_videos']:.1f} min | "
                f"{r['tvl1_iterations_per_pair']:.0f} | {r['pair_difference']:.1f} |" for r in ps["rows"]) + f"""

Reading: the benchmark's face moves ({ps_dx:g}, {ps_dy:g}) px per frame ({ps_step * ps['frames']:.0f} px over the video's {ps['frames']} frames). With the first box kept, the face
slides out of it, dlib's predictor shrinks and shifts the landmarks, and the aligned frames wobble: the two frames of a
pair differ {ps_1['pair_difference'] / ps_e['pair_difference']:.1f}x more than with detection on every frame, and TV-L1 needs {ps_1['tvl1_iterations_per_pair'] / ps_e['tvl1_iterations_per_pair']:.1f}x the iterations
to explain motion the face did not make, {ps_slow}. With the box following, the
pairs need the iterations of every-frame detection ({ps_f['tvl1_iterations_per_pair']:.0f} against {ps_e['tvl1_iterations_per_pair']:.0f}) and the preparation takes {ps_f['minutes_255_videos']:.1f} min instead of
{ps_e['minutes_255_videos']:.1f}. Inside `mol-prepare` the torch flow then solves {ps['pairs_per_video']} / ({ps_f['shares']['flow']:.2f} x {ps_f['seconds_per_video']:.2f} s) = {ps_rate(ps_f):.1f} pairs/s
in all; `{ps_tv['command']}` just after, on its own pairs (results `benchmarks/tvl1_prepare_host.json`), gave torch
{ps_tvb[('threads:1', 'torch')]:.2f} pairs/s at one thread and {ps_tvb[('processes:2', 'torch')]:.2f} with two processes (OpenCV {ps_tvb[('threads:1', 'opencv')]:.2f} / {ps_tvb[('processes:2', 'opencv')]:.2f}). A CASME II-sized
preparation has {ps_pairs:,} pairs: at {ps_rate(ps_f):.1f} pairs/s the flow alone takes {ps_pairs / ps_rate(ps_f) / 60:.0f} min on this host, so the
15-minute goal is {'met' if ps_f['minutes_255_videos'] <= 15 else 'not met'} here. This shared VM's speed changes between runs (its host's processor and
load change){ps_hist}compare the rows of one file, not figures of two runs. `mol-prepare` keeps detection on every frame by default, as released;
`--detect_once` is the fast choice.
<!-- /prepare_speed -->"""
tm = json.loads((R / "tvl1_results_cv_median.json").read_text())
tm_rate = {(r["mode"], r["method"], r["batch"]): r["pairs_per_s"] for r in tm["rows"]}
tm_modes = [m for m in ("threads:1", "threads:2", "processes:2") if (m, "opencv", None) in tm_rate]
tm_name = {"threads:1": "1 thread", "threads:2": "2 threads", "processes:2": "2 processes x 1 thread"}
tm_x = {m: tm_rate[(m, "torch", 4)] / tm_rate[(m, "opencv", None)] for m in tm_modes}
tm_m, tm_a, tm_c = tm["machine"], tm["agreement"], tm["casme2"]
TM = f"""<!-- tvl1_cv_median -->
**With OpenCV's median on the CPU** (results `benchmarks/tvl1_results_cv_median.json`, command `{tm['command']}`;
{tm_m['cpu']}, {tm_m['cpu_capability']}, torch {tm_m['torch']}, OpenCV {tm_m['opencv']}; load average {tm_m['load_average_before'][0]:.2f} before,
{tm_m['load_average_after'][0]:.2f} after). The 5x5 median of every block now goes to `cv2.medianBlur` for CPU tensors (`median_blur`,
chapter 13b: the same bits as the network, several times faster), and the solver's workspace keeps theta p, so an
iteration forms the change of u once (18 operations on the images instead of 20):

| mode | OpenCV | torch, batch 4 | torch, batch 30 | torch (batch 4) / OpenCV |
|---|---|---|---|---|
""" + "\n".join(f"| {tm_name[m]} | {tm_rate[(m, 'opencv', None)]:.2f} pairs/s | {tm_rate[(m, 'torch', 4)]:.2f} pairs/s | "
                f"{tm_rate[(m, 'torch', 30)]:.2f} pairs/s | {tm_x[m]:.1f}x |" for m in tm_modes) + f"""

Reading: in the same run `tvl1_flow_torch` does {min(tm_x.values()):.1f}-{max(tm_x.values()):.1f}x OpenCV's pairs per second, where the first AVX2 table
above gave 1.9x in every mode. Agreement: {tm_a['torch_vs_opencv_epe']:.4f} px to OpenCV; against the exact flow OpenCV {tm_a['opencv_vs_exact_epe']:.4f} px,
torch {tm_a['torch_vs_exact_epe']:.4f} px. At the best rate here ({tm_c['best']['pairs_per_s']:.2f} pairs/s, {tm_name[tm_c['best']['mode']]}) the flow of a CASME II-sized
preparation alone takes {tm_c['best_minutes']:.1f} min, {'within' if tm_c['best_minutes'] <= 15 else 'over'} the 15 minutes (OpenCV's best: {tm_c['best_opencv_minutes']:.1f} min).
<!-- /tvl1_cv_median -->"""
p = R / "README.md"; s = old = p.read_text()
for tag, text in (("ablations", A), ("ablations_sides", SD), ("student", B), ("model_speed", M), ("demo_seeds", D), ("demo_seeds_avx2", DSA),
                  ("recipe_screen_mirror", RSM), ("demo_seeds_mirror", DSM),
                  ("recipe_screen", RS), ("recipe_screen_iterations", RSI), ("demo_seeds_iterations", DSI), ("keyframes", K), ("amplitude_trained", TA),
                  ("prepare_speed", PS), ("tvl1_cv_median", TM)):
    if text is None: continue
    a, b = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if a in s: s = s[:s.index(a)] + text + s[s.index(b) + len(b):]
    else:
        anchor = {"model_speed": "\n**Whole model, released preset**", "demo_seeds": "\n| command | wall time | UF1 per video |",
                  "demo_seeds_avx2": "\n| command | wall time | UF1 per video |",
                  "recipe_screen_mirror": "\n| command | wall time | UF1 per video |",
                  "demo_seeds_mirror": "\n| command | wall time | UF1 per video |",
                  "recipe_screen": "\n| command | wall time | UF1 per video |",
                  "recipe_screen_iterations": "\n| command | wall time | UF1 per video |",
                  "demo_seeds_iterations": "\n| command | wall time | UF1 per video |",
                  "ablations_sides": "\n<!-- student -->",
                  "prepare_speed": "\nEvidence on synthetic data with exact ground truth",
                  "tvl1_cv_median": "\n## Model, flow head and correlation"}.get(tag, "\n## GPU\n")
        if anchor not in s: raise SystemExit(f"benchmarks/README.md: no place for the {tag} paragraph ({anchor.strip()!r} is gone)")
        s = s.replace(anchor, "\n" + text + "\n" + anchor, 1)
if "--check" in sys.argv[1:]:
    if s != old: raise SystemExit("benchmarks/README.md: the ablation, sides, student, model-speed, demo-seeds, recipe-screen, key-frame, trained-amplitude, preparation or TV-L1 paragraph differs from its results file; run python benchmarks/readme_tables.py")
else:
    p.write_text(s)
