"""Project checks that CI runs (through tests/test_project.py): notebooks clean, package in sync with notebooks.

    python tools/checks.py        # prints what is wrong, exits 1 if anything is
"""
from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SKIP = {"__pycache__", ".ipynb_checkpoints"}


def _files(d: Path) -> dict[str, Path]:
    return {str(p.relative_to(d)): p for p in sorted(d.rglob("*"))
            if p.is_file() and not (SKIP & set(p.relative_to(d).parts))}


def dirty_notebooks(nbs_dir: Path = ROOT / "nbs", root: Path = ROOT) -> list[str]:
    "Notebooks that `nbdev_clean` would change (it runs on copies; nothing in `nbs_dir` is touched)."
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, p in _files(nbs_dir).items():
            if p.suffix == ".ipynb":
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, tmp / name)
        subprocess.run([str(BIN / "nbdev_clean"), "--fname", str(tmp)], cwd=root, check=True,
                       capture_output=True, text=True)
        return [name for name, p in _files(tmp).items() if not filecmp.cmp(p, nbs_dir / name, shallow=False)]


def export_drift(root: Path = ROOT, lib: str = "mol_edu") -> list[str]:
    "Files under `lib/` or `nbs/` that `nbdev_export` would add, change or remove (run on a copy of the project)."
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("settings.ini", "_quarto.yml"):
            if (root / name).exists(): shutil.copy2(root / name, tmp / name)
        for d in ("nbs", lib):
            if (root / d).exists():
                shutil.copytree(root / d, tmp / d, symlinks=True, ignore=shutil.ignore_patterns(*SKIP))
        r = subprocess.run([str(BIN / "nbdev_export")], cwd=tmp, capture_output=True, text=True)
        if r.returncode: return [f"nbdev_export failed: {r.stderr.strip().splitlines()[-1:]}"]
        drift = []
        for d in ("nbs", lib):
            before, after = _files(root / d), _files(tmp / d)
            drift += [f"{d}/{n} (new: untracked module nbdev_export writes)" for n in sorted(after.keys() - before.keys())]
            drift += [f"{d}/{n} (removed by nbdev_export)" for n in sorted(before.keys() - after.keys())]
            drift += [f"{d}/{n} (differs)" for n in sorted(before.keys() & after.keys())
                      if not filecmp.cmp(before[n], after[n], shallow=False)]
        return drift


def name_collisions(package: str = "mol_edu") -> list[str]:
    "Names that two modules of `package` export (`__all__`) with different values: one name, one meaning."
    import importlib, pkgutil
    pkg = importlib.import_module(package)
    seen: dict[str, list] = {}
    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name.startswith("_"): continue
        mod = importlib.import_module(f"{package}.{m.name}")
        for name in getattr(mod, "__all__", []): seen.setdefault(name, []).append((m.name, getattr(mod, name)))
    def same(a, b):
        if a is b: return True
        try: return bool(a == b) if type(a) is type(b) and not callable(a) else False
        except Exception: return False
    return [f"{name}: " + ", ".join(f"{package}.{mod}" for mod, _ in defs) for name, defs in sorted(seen.items())
            if any(not same(defs[0][1], v) for _, v in defs[1:])]


def exported_cell_lengths(nbs_dir: Path = ROOT / "nbs") -> list[tuple[int, str, str]]:
    "(lines, notebook, cell id) of every exported code cell, longest first."
    import json
    rows = []
    for p in sorted(nbs_dir.glob("*.ipynb")):
        for c in json.loads(p.read_text())["cells"]:
            src = "".join(c["source"])
            if c["cell_type"] == "code" and src.lstrip().startswith("#| export"):
                rows.append((len(src.splitlines()), p.name, c.get("id", "?")))
    return sorted(rows, reverse=True)


def exercise_gaps(nbs_dir: Path = ROOT / "nbs") -> list[str]:
    """What the exercises of each chapter lack: a worked solution the reader can reveal (a `<details>` block with a
    `Solution` summary) in every chapter with an Exercises section, and, for every check function a chapter defines
    outside its exports (`def check_...`), a test showing it can say both right and wrong."""
    import json
    import re
    gaps = []
    for p in sorted(nbs_dir.glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        if re.search(r"^#+ Exercises", md, flags=re.M) and not re.search(r"<details>\s*<summary>\s*Solution", md):
            gaps.append(f"{p.name}: exercises without a worked solution")
        local = "\n".join("".join(c["source"]) for c in cells
                          if c["cell_type"] == "code" and not "".join(c["source"]).lstrip().startswith("#| export"))
        for name in sorted(set(re.findall(r"^def (check_\w+)", local, flags=re.M))):
            said = set(re.findall(rf"test_eq\({name}\((?:(?!test_eq).)*?\),\s*(True|False)\)", code, flags=re.S))
            said |= {"True"} if re.search(rf"{name}\([^\n]*\)\.startswith\(\"right", code) else set()
            said |= {"False"} if re.search(rf"{name}\([^\n]*\)\.startswith\(\"not yet", code) else set()
            if not {"True", "False"} <= said:
                gaps.append(f"{p.name}: {name} is not shown to say both right and wrong")
    return gaps


if __name__ == "__main__":
    bad = [f"dirty notebook: nbs/{n}" for n in dirty_notebooks()] + [f"out of sync: {d}" for d in export_drift()]
    bad += [f"name collision: {c}" for c in name_collisions()] + exercise_gaps()
    print("\n".join(bad) or "notebooks clean, package in sync, no name collisions")
    longest = exported_cell_lengths()[:5]
    print("longest exported cells: " + ", ".join(f"{n} lines ({nb} {cid})" for n, nb, cid in longest))
    sys.exit(1 if bad else 0)
