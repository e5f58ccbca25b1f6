"""The project's own checks: clean notebooks, package in sync, README in sync, one Quarto config."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools")); sys.path.insert(0, str(ROOT / "tests"))
import checks  # noqa: E402
import docs  # noqa: E402


def test_notebooks_are_clean():
    assert checks.dirty_notebooks() == [], "run `make sync` (nbdev_clean) and commit"


def test_a_dirty_notebook_is_caught(tmp_path):
    nbs = tmp_path / "nbs"; nbs.mkdir()
    nb = json.loads((ROOT / "nbs" / "00_core.ipynb").read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["execution_count"] = 7
    code["metadata"]["scrolled"] = True
    (nbs / "00_core.ipynb").write_text(json.dumps(nb, indent=1))
    shutil.copy2(ROOT / "nbs" / "index.ipynb", nbs / "index.ipynb")
    assert checks.dirty_notebooks(nbs) == ["00_core.ipynb"]


def test_package_in_sync_with_notebooks():
    assert checks.export_drift() == [], "run `make sync` (nbdev_export) and commit mol_edu/"


def _mini_project(tmp_path):
    for name in ("settings.ini", "_quarto.yml"): shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs", symlinks=True, ignore=shutil.ignore_patterns("[1-9]*.ipynb"))
    shutil.copytree(ROOT / "mol_edu", tmp_path / "mol_edu", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([str(checks.BIN / "nbdev_export")], cwd=tmp_path, check=True, capture_output=True)
    assert checks.export_drift(tmp_path) == []
    return tmp_path


def test_out_of_sync_package_is_caught(tmp_path):
    root = _mini_project(tmp_path)
    core = root / "mol_edu" / "core.py"
    core.write_text(core.read_text() + "\nHAND_EDIT = 1\n")
    assert checks.export_drift(root) == ["mol_edu/core.py (differs)"]


def test_untracked_new_module_is_caught(tmp_path):
    root = _mini_project(tmp_path)
    (root / "mol_edu" / "core.py").unlink()
    assert checks.export_drift(root) == ["mol_edu/core.py (new: untracked module nbdev_export writes)"]


def test_no_two_modules_export_one_name_with_different_values():
    assert checks.name_collisions() == [], "one name, one meaning: rename or import from the one home"


def test_a_name_collision_is_caught(tmp_path, monkeypatch):
    pkg = tmp_path / "clash"; pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("__all__ = ['LEFT_EYE', 'SAME']\nLEFT_EYE = slice(36, 42)\nSAME = 68\n")
    (pkg / "b.py").write_text("__all__ = ['LEFT_EYE', 'SAME']\nLEFT_EYE = slice(42, 48)\nSAME = 68\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert checks.name_collisions("clash") == ["LEFT_EYE: clash.a, clash.b"]


MAX_EXPORTED_CELL = 40   # lines: a reader holds one idea per exported cell


def test_exported_cells_are_short():
    long = [f"{nb} {cid}: {n} lines" for n, nb, cid in checks.exported_cell_lengths() if n > MAX_EXPORTED_CELL]
    assert long == [], f"split exported cells over {MAX_EXPORTED_CELL} lines into helpers: {long}"


def test_a_long_exported_cell_is_caught(tmp_path):
    import json
    cell = {"cell_type": "code", "id": "x1", "metadata": {}, "outputs": [], "execution_count": None,
            "source": ["#| export\n"] + [f"a{i} = {i}\n" for i in range(45)]}
    (tmp_path / "n.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert checks.exported_cell_lengths(tmp_path) == [(46, "n.ipynb", "x1")]



def test_every_chapter_has_a_worked_solution_and_honest_check_functions():
    gaps = checks.exercise_gaps()
    assert gaps == [], "exercises need a worked solution (<details><summary>Solution</summary>) and check functions " \
                       f"shown to say both right and wrong: {gaps}"


def test_missing_solutions_and_one_sided_checks_are_caught(tmp_path):
    import json
    def nb(name, md, code):
        cells = [{"cell_type": "markdown", "id": "m1", "metadata": {}, "source": [md]},
                 {"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [], "execution_count": None, "source": [code]}]
        (tmp_path / name).write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    check = "#| hide\ndef check_x(n):\n    return n == 2\n\ntest_eq(check_x(2), True)\n"
    nb("a.ipynb", "## Exercises\n\n1. Add 1 and 1.\n", check + "test_eq(check_x(3), False)\n")
    nb("b.ipynb", "## Exercises\n\n1. Add.\n\n   <details><summary>Solution</summary>\n\n   2\n\n   </details>\n", check)
    nb("c.ipynb", "## Exercises\n\n1. Add.\n\n   <details><summary>Solution</summary>\n\n   2\n\n   </details>\n",
       check + "test_eq(check_x(\n    3), False)\n")
    assert checks.exercise_gaps(tmp_path) == ["a.ipynb: exercises without a worked solution",
                                              "b.ipynb: check_x is not shown to say both right and wrong"]

def test_readme_in_sync_with_index():
    text, files = docs.render_readme(with_files=True)
    assert (ROOT / "README.md").read_text(encoding="utf-8") == text, \
        "README.md differs from nbs/index.ipynb: run `make readme` and commit"
    for name, data in files.items():
        assert (ROOT / name).is_file() and (ROOT / name).read_bytes() == data, f"{name}: run `make readme` and commit"


def test_readme_links_resolve_from_the_repository_root():
    import re
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s#]+)", text) if "://" not in t]
    assert any(t.endswith(".png") for t in targets), "README shows no figure"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert missing == [], f"README links to files that do not exist: {missing}"


def test_one_quarto_config():
    "nbdev reads nbs/_quarto.yml; it must be the top-level _quarto.yml itself (a link), not a copy that can drift."
    nbs_yml = ROOT / "nbs" / "_quarto.yml"
    assert nbs_yml.is_symlink() and nbs_yml.resolve() == (ROOT / "_quarto.yml").resolve()
    from nbdev.config import get_config
    assert (get_config(path=ROOT).nbs_path / "_quarto.yml").resolve() == (ROOT / "_quarto.yml").resolve()


def test_settings_are_the_single_source():
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=["="]); cfg.read(ROOT / "settings.ini")
    d = cfg["DEFAULT"]
    assert d["update_pyproject"] == "False" and d["tst_flags"].split() == ["notest", "slow", "cuda"]
    assert "pkg_resources" not in (ROOT / "setup.py").read_text()
    assert not (ROOT / "pyproject.toml").exists()
    from importlib.metadata import version
    import mol_edu
    assert mol_edu.__version__ == d["version"] == version("mol_edu")


def test_console_scripts_installed():
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=["="]); cfg.read(ROOT / "settings.ini")
    for entry in cfg["DEFAULT"]["console_scripts"].split():
        name = entry.split("=")[0]
        assert (checks.BIN / name).exists(), f"console script {name} not installed: run `make install`"


def test_a_failing_notebook_fails_its_test(tmp_path):
    "The notebook runner reports a failing cell (so a broken notebook can't pass CI), and skips slow cells."
    import test_notebooks as tn
    import nbformat
    def run(*cells):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        path = tmp_path / "probe.ipynb"; nbformat.write(nb, path)
        skip, force = ["notest", "slow", "cuda"], []
        return subprocess.run([sys.executable, "-c", tn.RUNNER, str(path), " ".join(skip), " ".join(force)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120).returncode
    assert run("x = 1", "assert x == 1") == 0
    assert run("x = 1", "assert x == 2") != 0
    assert run("x = 1", "#| slow\nassert x == 2") == 0


def test_benchmark_readme_tables_match_their_results_files(tmp_path):
    run = lambda d: subprocess.run([sys.executable, str(d / "readme_tables.py"), "--check"], capture_output=True, text=True)
    r = run(ROOT / "benchmarks")
    assert r.returncode == 0, r.stderr
    for f in ("readme_tables.py", "README.md", "ablations.json", "ablations_sides.json", "student.json", "model_speed.json",
              "demo_seeds.json", "recipe_screen.json", "keyframes.json", "ablations_amp0.5.json", "ablations_amp0.25.json",
              "prepare_speed.json", "tvl1_prepare_host.json", "demo_seeds_recheck.json",
              "recipe_screen_iterations.json", "demo_seeds_iterations.json", "tvl1_results_cv_median.json",
              "demo_seeds_avx2.json", "recipe_screen_mirror.json", "recipe_screen_recheck.json", "demo_seeds_mirror.json"):
        shutil.copy(ROOT / "benchmarks" / f, tmp_path / f)
    readme = tmp_path / "README.md"
    text = readme.read_text()
    start = text.index("<!-- ablations -->")
    i = text.index("| full vs no FCC |", start)
    readme.write_text(text[:i] + text[i:].replace("| yes |", "| no |", 1))   # a hand edit of one verdict
    r = run(tmp_path)
    assert r.returncode == 1 and "differs from its results file" in r.stderr
    for tag, row in (("recipe_screen", "| lr 2e-3 | `--lr 2e-3` |"), ("prepare_speed", "| once, box follows | torch |"),
                     ("recipe_screen_iterations", "| iters 1000 | `--iterations 1000` |"), ("demo_seeds_iterations", "| 2026 |"),
                     ("tvl1_cv_median", "| 1 thread |"), ("demo_seeds_avx2", "| 2028 |"),
                     ("recipe_screen_mirror", "| mirror 0.5 | `--hflip 0.5` |"), ("demo_seeds_mirror", "| 2028 |")):
        i = text.index(row, text.index(f"<!-- {tag} -->")) + len(row)
        k = next(j for j in range(i, len(text)) if text[j].isdigit())         # the row's first figure, edited by hand
        readme.write_text(text[:k] + str((int(text[k]) + 1) % 10) + text[k + 1:])
        r = run(tmp_path)
        assert r.returncode == 1 and "differs from its results file" in r.stderr, (tag, r.stderr)
    readme.write_text(text)
    assert run(tmp_path).returncode == 0
    # a results file that contradicts the reading's claims stops the generator instead of changing the prose
    ps = json.loads((tmp_path / "prepare_speed.json").read_text())
    by = {r["detection"]: r for r in ps["rows"]}
    by["once, first box"]["tvl1_iterations_per_pair"] = by["every frame"]["tvl1_iterations_per_pair"]   # no slower
    (tmp_path / "prepare_speed.json").write_text(json.dumps(ps))
    r = run(tmp_path)
    assert r.returncode == 1 and "AssertionError" in r.stderr
    # a re-run of a demo seed that scored otherwise is reported as such, not as a reproduction
    rc = json.loads((tmp_path / "demo_seeds_recheck.json").read_text())
    rc["runs"][0]["video"]["uf1"] += 0.01
    (tmp_path / "demo_seeds_recheck.json").write_text(json.dumps(rc))
    shutil.copy(ROOT / "benchmarks" / "prepare_speed.json", tmp_path / "prepare_speed.json")
    assert subprocess.run([sys.executable, str(tmp_path / "readme_tables.py")], capture_output=True).returncode == 0
    assert "not reproducible even on one kind of host" in readme.read_text()
