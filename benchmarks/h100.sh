#!/usr/bin/env bash
# Issue 8's device check (benchmarks/h100/) in the last call on the lent GPU machine.
#
# Before it, here:  ../shared/device/stage-wheels   (onnxruntime-gpu in pieces .device/p1..pN, and
#   .device/w with diffusers, importlib_metadata, polygraphy); add the test runner to .device/w too:
#   python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .device/w pytest pluggy iniconfig
# Then one device call per piece but the last, back to back (the machine forgets after ~30 s idle):
#   run carry [".device/p1"] command: cat .device/p1/* > /tmp/ort.whl
#   run carry [".device/p2"] command: cat .device/p2/* >> /tmp/ort.whl   ... up to p(N-1)
# And the last call:  run carry [".device/pN", ".device/w"] command: bash benchmarks/h100.sh
# (extra arguments go to python -m benchmarks.h100, e.g. --skip-compile).
# Figures land in $OUT/h100.json and h100.txt.
# The whole check takes about 8-10 minutes there; to stay clear of the 600 s per-call limit, split it
# into two calls back to back (the model and bundle stay in /tmp/sdrt-h100 while the machine is warm):
#   run carry [".device/pN", ".device/w"] command: bash benchmarks/h100.sh --stages env model build
#   run command: bash benchmarks/h100.sh --stages env parity sync pytest timing
set -euo pipefail
cd "$(dirname "$0")/.."
for piece in .device/p*; do  # the pieces carried by this call (the last one)
    if [ -d "$piece" ]; then cat "$piece"/* >> /tmp/ort.whl; fi
done
wheel=/tmp/onnxruntime_gpu-${ORT_VERSION:-1.31.1}-cp312-cp312-manylinux_2_28_x86_64.whl
if [ -f /tmp/ort.whl ]; then mv /tmp/ort.whl "$wheel"; fi
shopt -s nullglob
small=(.device/w/*.whl)
if [ ! -d /tmp/site/onnxruntime ]; then  # a second call on the warm machine finds them installed
    python3 -m pip install -q --no-index --no-deps --target /tmp/site "$wheel" "${small[@]}"
fi
# sdrt is a namespace package mapped from the repository's folders (pyproject package-dir)
mkdir -p /tmp/site/sdrt
for part in export runtime schedulers; do ln -sfn "$PWD/$part" "/tmp/site/sdrt/$part"; done
export PYTHONPATH=/tmp/site:$PWD
export OUT=${OUT:-$PWD/h100-out}
exec python3 -m benchmarks.h100 --out "$OUT" "$@"
