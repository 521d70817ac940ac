#!/usr/bin/env bash
# The GPU check of benchmarks/h100/ (python -m benchmarks.h100) on a machine whose Python has no
# sdrt installed: wheels carried into .device/ (onnxruntime-gpu, possibly split in pieces .device/p*,
# and small ones in .device/w) are installed into /tmp/site, sdrt's folders are linked there, and the
# check runs. On a GPU machine of your own, skip this script:
#   pip install torch -e ".[cuda,export]" && python -m benchmarks.h100 --out h100-out
# Extra arguments go to python -m benchmarks.h100 (--stages ..., --skip-compile). Figures land in
# $OUT/h100.json and h100.txt.
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
for part in cli export runtime schedulers; do ln -sfn "$PWD/$part" "/tmp/site/sdrt/$part"; done
export PYTHONPATH=/tmp/site:$PWD
export OUT=${OUT:-$PWD/h100-out}
exec python3 -m benchmarks.h100 --out "$OUT" "$@"
