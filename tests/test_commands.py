"""Every command line quoted in a notebook, the README or the benchmarks README must run as written.

mol_edu's console scripts are parsed with their own argument parsers (an unknown option such as
`--videos-per-class`, where fastcore keeps the underscore, fails here); benchmark scripts quoted as
`python benchmarks/<script>.py ...` must accept every option they are quoted with (read from their --help).
"""
import json
import re
import shlex
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from fastcore.script import anno_parser

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"mol-train": "mol_edu.cli:train_cli", "mol-eval": "mol_edu.cli:eval_cli", "mol-predict": "mol_edu.cli:predict_cli",
           "mol-prepare": "mol_edu.prepare:prepare_cli", "mol-synth": "mol_edu.synthetic:synth_cli",
           "mol-smoke": "mol_edu.core:smoke_cli"}


def _texts():
    "(source, markdown) of every markdown cell of the notebooks, the README and the benchmarks README."
    for p in sorted((ROOT / "nbs").glob("*.ipynb")):
        for c in json.loads(p.read_text())["cells"]:
            if c["cell_type"] == "markdown": yield p.name, "".join(c["source"])
    for p in (ROOT / "README.md", ROOT / "benchmarks" / "README.md"):
        if p.exists(): yield str(p.relative_to(ROOT)), p.read_text()


CALL = re.compile(r"^(?:\S+=\S+\s+)*(?:torchrun\b.*?--no-python\s+)?((?:mol-(?:train|eval|predict|prepare|synth|smoke))\b.*|"
                  r"(?:\.venv/bin/)?python3? benchmarks/\w+\.py.*)$")


def _candidates(text):
    "(line, whole): command lines of fenced code blocks (whole commands) and inline code spans (perhaps a fragment)."
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines(): yield line, True
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        if " " in span.strip(): yield span, False


def quoted_commands():
    "Every quoted call of a console script or benchmark: (source, argv)."
    found = []
    for source, text in _texts():
        for line, whole in _candidates(text):
            m = CALL.match(re.sub(r"^\s*[$>]\s*", "", line.strip()))
            if not m: continue
            cmd = m.group(1).split(" #")[0].strip()
            try: argv = shlex.split(cmd)
            except ValueError: continue
            found.append((source, argv if whole else ["(inline)", *argv]))
    return found


def _parser(script):
    import importlib
    mod, fn = SCRIPTS[script].split(":")
    return anno_parser(getattr(importlib.import_module(mod), fn), prog=script)


@lru_cache(maxsize=None)
def _bench_help(path):
    r = subprocess.run([sys.executable, str(ROOT / path), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{path} --help failed: {r.stderr[-500:]}"
    return r.stdout


COMMANDS = quoted_commands()


def test_commands_are_found():
    assert len([a for _, a in COMMANDS if "mol-train" in a[:2]]) >= 5   # the extraction itself works


@pytest.mark.parametrize("source,argv", COMMANDS, ids=[f"{s}:{' '.join(a)[:60]}" for s, a in COMMANDS])
def test_quoted_command_parses(source, argv):
    if argv[0] == "(inline)":                                  # a fragment in prose: its options must exist
        argv = argv[1:]
        if argv[0] in SCRIPTS:
            known = {o for a in _parser(argv[0])._actions for o in a.option_strings}
            for opt in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
                assert opt in known, f"{source}: `{' '.join(argv)}`: {argv[0]} has no option {opt}"
            return
    if argv[0] in SCRIPTS:
        p = _parser(argv[0])
        try: p.parse_args([a for a in argv[1:] if a != "..."])
        except SystemExit as e:
            pytest.fail(f"{source}: `{' '.join(argv)}` does not parse (exit {e.code})")
        return
    script = next(a for a in argv if a.startswith("benchmarks/"))
    if "--extra" in argv:                                       # what follows --extra is passed on to mol-train
        i = argv.index("--extra")
        argv, passed = argv[:i + 1], argv[i + 1:]
        try: _parser("mol-train").parse_args(passed)
        except SystemExit as e: pytest.fail(f"{source}: `{' '.join(passed)}` after --extra is not a mol-train command line (exit {e.code})")
    helptext = _bench_help(script)
    for opt in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert re.search(rf"{re.escape(opt)}\b", helptext), f"{source}: `{' '.join(argv)}`: {script} has no option {opt}"


def test_a_wrong_option_is_caught():
    p = _parser("mol-synth")
    with pytest.raises(SystemExit):
        p.parse_args(["out", "--videos-per-class", "1"])
