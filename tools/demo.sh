#!/usr/bin/env bash
# Builds libimp (CPU) and generates text with MTP speculative decoding on the bundled demo model, printing the
# acceptance per draft depth and the speed-up over plain decoding. Extra arguments go to imp-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
build=${IMP_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DIMP_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target imp-cli
prompt=${IMP_PROMPT:-"def fibonacci(n):
    \"\"\"Return the n-th Fibonacci number.\"\"\"
"}
exec "$build/imp-cli" --model models/imp-demo --prompt "$prompt" -n 128 --mtp auto "$@"
