#!/usr/bin/env bash
# Builds the CPU engine and its core test suites with AddressSanitizer + UndefinedBehaviorSanitizer and runs them:
# memory errors, leaks and undefined behaviour on every path the tests take, bad input included. CI runs it after
# tools/test.sh (about 8 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${IMP_ASAN_BUILD_DIR:-build-asan}
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
suites=(test_model_errors test_forward_state test_speculative test_fixtures test_lossless_sampling test_adaptive
        test_tokenizer test_tokenizer_golden test_gguf test_gguf_tokenizer)
cmake -S . -B "$build" -DIMP_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
      -DCMAKE_EXE_LINKER_FLAGS="$san" -DCMAKE_SHARED_LINKER_FLAGS="$san" >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${suites[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
failed=0
for t in "${suites[@]}"; do
  if "$build/tests/$t" --gtest_brief=1 > "$build/$t.log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED under sanitizers: $t"
    tail -40 "$build/$t.log"
  fi
done
echo "sanitizers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
