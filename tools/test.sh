#!/usr/bin/env bash
# Builds libimp (CPU) and runs every test: unit tests, the transformers goldens, tokenizer goldens, the C-header
# checks and leak checks. GPU tests skip (and say so) where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
build=${IMP_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DIMP_CUDA=${IMP_CUDA:-AUTO} >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)"
