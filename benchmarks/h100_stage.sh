#!/usr/bin/env bash
# Here (no GPU needed): packs what benchmarks/h100.sh installs on the lent GPU machine into pieces
# that each fit one device call beside the working tree (64 MiB a call, the tree ~19 MiB):
#   .device/p1 … .device/pN  onnxruntime-gpu (CUDA 13 build): its CUDA provider library xz-compressed
#                            (220 MiB in the wheel's zip, 177 MiB as xz) and the rest of the wheel, in one
#                            tar cut into 43 MiB pieces
#   .device/w/               small wheels: diffusers, importlib_metadata, polygraphy
# The last piece's folder also holds the tar's checksum (blob.sha256). Then, back to back (the machine
# forgets after ~30 s idle; each call's working tree + carried paths must stay under 64 MiB):
#   carry [".device/pN", ".device/w"]  command: bash benchmarks/h100.sh --background-model
#       (copies its piece, installs the small wheels, starts making the SD1.5-sized model meanwhile)
#   carry [".device/pK"]               command: bash benchmarks/h100.sh --copy-only   (K = 1 … N-2)
#   carry [".device/pN-1"]             command: bash benchmarks/h100.sh   (joins, installs, runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=${ORT_VERSION:-1.31.1}
grep -qx "/.device/" .git/info/exclude 2>/dev/null || echo "/.device/" >> .git/info/exclude
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dl() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$1" "$2"; }
dl "$tmp" "onnxruntime-gpu==$ORT_VERSION"
mkdir "$tmp/rest"
(cd "$tmp/rest" && unzip -q "$tmp"/onnxruntime_gpu-*.whl)
xz -T0 -9 -c "$tmp/rest/onnxruntime/capi/libonnxruntime_providers_cuda.so" > "$tmp/cuda.so.xz"
rm "$tmp/rest/onnxruntime/capi/libonnxruntime_providers_cuda.so"
(cd "$tmp/rest" && zip -q -r -9 ../rest.zip .)
tar -C "$tmp" -cf "$tmp/blob.tar" rest.zip cuda.so.xz
rm -rf .device/p[0-9]* .device/w
mkdir -p .device/w
split -b 43M -d -a 1 "$tmp/blob.tar" "$tmp/piece."
i=1
for f in "$tmp"/piece.*; do mkdir -p ".device/p$i"; mv "$f" ".device/p$i/"; i=$((i+1)); done
for w in diffusers importlib_metadata polygraphy; do dl .device/w "$w"; done
(cd "$tmp" && sha256sum blob.tar) > ".device/p$((i-1))/blob.sha256"
du -sh .device/*
