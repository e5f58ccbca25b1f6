#!/usr/bin/env bash
# Create .venv and install mol_edu with everything it needs. Idempotent: a second run with unchanged
# settings.ini/setup.py does nothing. Needs only Python 3.10+ (set PYTHON to choose the interpreter).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed
want=$(cat settings.ini setup.py tools/install.sh | sha256sum | cut -c1-16)
if [[ -f $STAMP && "$(cat "$STAMP")" == "$want" && -x $VENV/bin/python ]]; then
  echo "install: .venv is up to date"; exit 0
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), f"mol_edu needs Python 3.10+, this is {sys.version.split()[0]}"'
[[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# PyTorch first: where this machine holds the CPU wheel torch 2.13.0 (pip's find-links), take it, so that the
# project's torch range is already satisfied and pip never pulls a multi-GB CUDA build. Elsewhere pip picks the
# build that suits the machine from the project's range.
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  links="${PIP_FIND_LINKS:-} $("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true) /opt/wheels"
  for d in $links; do
    if compgen -G "$d/torch-2.13.0+cpu-*.whl" >/dev/null; then
      echo "install: torch==2.13.0 (CPU wheel found in $d)"; "$VENV/bin/python" -m pip install -q torch==2.13.0; break
    fi
  done
fi
echo "install: mol_edu and its requirements (settings.ini)"
"$VENV/bin/python" -m pip install -q -e ".[dev]"
"$VENV/bin/python" -m pip check
echo "$want" > "$STAMP"
echo "install: done"
