#!/usr/bin/env bash
# Download the wheels of tools/gpu_wheels.txt into .whl/ (git-ignored) for the GPU machine, which has no registry:
# Python 3.12, manylinux x86_64, no dependency resolution (every needed package is named in the list).
# Usage: bash tools/gpu_wheels.sh [DEST]   (default DEST: .whl). Needs pip and a registry on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${1:-.whl}
mapfile -t pins < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' tools/gpu_wheels.txt | grep -v '^$')
[[ ${#pins[@]} -gt 0 ]] || { echo "gpu-wheels: tools/gpu_wheels.txt names no wheel" >&2; exit 2; }
mkdir -p "$DEST"
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${pins[@]}"
echo "gpu-wheels: ${#pins[@]} wheels in $DEST/ ($(du -sh "$DEST" | cut -f1)); carry it to the GPU machine with the repository"
