#!/usr/bin/env bash
# The GPU check of benchmarks/h100/ (python -m benchmarks.h100) on the lent machine, whose Python has
# no sdrt, no onnxruntime-gpu and no diffusers. benchmarks/h100_stage.sh packs them into pieces carried
# one call each (see there); every call copies its pieces to /tmp/pieces and installs the small wheels
# it carries. With --copy-only that is all; with --background-model it also starts making the model
# folder (torch + diffusers only) in a process that outlives the call; otherwise the pieces are
# joined, checked and unpacked into /tmp/site, and the check runs (waiting for a model in the making).
# On a GPU machine of your own, skip this script:
#   pip install torch -e ".[cuda,export]" && python -m benchmarks.h100 --out h100-out
# Other arguments go to python -m benchmarks.h100 (--stages ..., --skip-compile). Figures land in
# $OUT/h100.json and h100.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p /tmp/pieces /tmp/site
for piece in .device/p*; do cp "$piece"/* /tmp/pieces/; done
if [ -d .device/w ] && [ ! -d /tmp/site/diffusers ]; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/w/*.whl
fi
ls /tmp/pieces
if [ "${1:-}" = "--copy-only" ]; then exit 0; fi
# sdrt is a namespace package mapped from the repository's folders (pyproject package-dir)
mkdir -p /tmp/site/sdrt
for part in cli export runtime schedulers; do ln -sfn "$PWD/$part" "/tmp/site/sdrt/$part"; done
# the CUDA 13 and cuDNN libraries of torch's nvidia-* wheels, for ONNX Runtime's CUDA provider in every
# process (onnxruntime.preload_dlls looks for them beside onnxruntime, in /tmp/site, not there)
nvidia_libs=$(python3 -c "import glob, nvidia; print(':'.join(d for p in nvidia.__path__ for d in glob.glob(p + '/*/lib')))" || true)
export LD_LIBRARY_PATH=${nvidia_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
if [ "${1:-}" = "--background-model" ]; then
    work=/tmp/sdrt-h100
    setsid nohup sh -c "python3 -m benchmarks.h100 --stages model --work $work --out /tmp/model-out \
        && touch /tmp/model.done || (rm -rf $work; touch /tmp/model.done)" > /tmp/model.log 2>&1 < /dev/null &
    exit 0
fi
# an earlier call is making the model (a failed one is made again below); it imports diffusers, which
# looks at onnxruntime: unpack that only once the model is written
if [ -f /tmp/model.log ]; then
    while [ ! -f /tmp/model.done ]; do sleep 1; done
    tail -n 3 /tmp/model.log
fi
if [ ! -d /tmp/site/onnxruntime ]; then  # a second run on the warm machine finds it installed
    mkdir -p /tmp/ortx
    cat /tmp/pieces/piece.* > /tmp/ortx/blob.tar
    (cd /tmp/ortx && sha256sum -c /tmp/pieces/blob.sha256)
    tar -xf /tmp/ortx/blob.tar -C /tmp/ortx
    python3 -m zipfile -e /tmp/ortx/rest.zip /tmp/site
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
        /tmp/ortx/cuda.so.xz /tmp/site/onnxruntime/capi/libonnxruntime_providers_cuda.so
    rm -rf /tmp/ortx
fi
export OUT=${OUT:-$PWD/h100-out}
exec python3 -m benchmarks.h100 --out "$OUT" "$@"
