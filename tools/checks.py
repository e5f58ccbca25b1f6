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


if __name__ == "__main__":
    bad = [f"dirty notebook: nbs/{n}" for n in dirty_notebooks()] + [f"out of sync: {d}" for d in export_drift()]
    print("\n".join(bad) or "notebooks clean, package in sync")
    sys.exit(1 if bad else 0)
