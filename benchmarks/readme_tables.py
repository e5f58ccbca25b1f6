"""The ablation and student paragraphs of benchmarks/README.md, written from their results files (between markers).

    python benchmarks/readme_tables.py           # rewrite the two paragraphs
    python benchmarks/readme_tables.py --check   # exit 1 if the README differs from what the results files say
"""
import json
import sys
from pathlib import Path

R = Path(__file__).resolve().parent
abl = json.loads((R / "ablations.json").read_text())
st = json.loads((R / "student.json").read_text())
pr = abl["protocol"]
rows = "\n".join(f"| full vs {c['b']} | {c['uf1']['a']:.3f} / {c['uf1']['b']:.3f} | {c['uf1']['diff']:+.3f} | "
                 f"[{c['uf1']['low']:+.3f}, {c['uf1']['high']:+.3f}] | {c['permutation_p']:.4f} | "
                 f"{' '.join(f'{q:.3f}' for q in c['mcnemar_p'])} | {'yes' if c['real'] else 'no'} |" for c in abl["comparisons"])
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
p = R / "README.md"; s = old = p.read_text()
for tag, text in (("ablations", A), ("student", B)):
    a, b = f"<!-- {tag} -->", f"<!-- /{tag} -->"
    if a in s: s = s[:s.index(a)] + text + s[s.index(b) + len(b):]
    else:
        anchor = "\n## GPU\n"; s = s.replace(anchor, "\n" + text + "\n" + anchor)
if "--check" in sys.argv[1:]:
    if s != old: raise SystemExit("benchmarks/README.md: the ablation or student paragraph differs from its results file; run python benchmarks/readme_tables.py")
else:
    p.write_text(s)
