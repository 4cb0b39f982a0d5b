#!/bin/sh
# Builds the GGUF reader's libFuzzer target with ASan + UBSan and runs it.
#   tests/fuzz/run_gguf_fuzz.sh [seconds]      fuzz for that long (default 600) over a copy of the seed corpus
#   tests/fuzz/run_gguf_fuzz.sh --corpus       run the committed corpus once (a fast regression check for CI)
# Needs clang with compiler-rt (Debian: apt-get install clang libclang-rt-14-dev).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${IMP_FUZZ_BUILD:-$root/build-fuzz}
mkdir -p "$out"
CXX=${CXX_FUZZ:-clang++}
"$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/include" -I"$root/lib" \
  "$here/gguf_fuzz.cpp" "$root/lib/gguf/gguf.cpp" "$root/lib/gguf/quants.cpp" "$root/lib/core/error.cpp" \
  "$root/lib/core/file.cpp" -o "$out/gguf_fuzz"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if [ "${1:-}" = "--corpus" ]; then
  exec "$out/gguf_fuzz" -runs=0 "$here/corpus_gguf"
fi
secs=${1:-600}
work="$out/corpus_gguf"
mkdir -p "$work"
cp -n "$here"/corpus_gguf/* "$work"/ 2>/dev/null || true
exec "$out/gguf_fuzz" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 "$work" "$here/corpus_gguf"
