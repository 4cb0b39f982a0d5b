#!/usr/bin/env bash
# Cross-builds the CPU-only imp.dll (+ libimp.dll.a import library) and the C examples with mingw-w64
# (packaging/mingw-w64.cmake), then runs them under wine on a model (examples/run_example.sh picks it).
# Exit 77 (CTest: skipped) only when a required tool is missing, the utf8proc source cannot be fetched, or wine
# cannot start here; the reason is printed.
# usage: build_and_run.sh SOURCE_DIR WORK_DIR MAKE_TINY_MODEL
set -euo pipefail
src=$(cd "$1" && pwd) work=$2 make_tiny=$3
mkdir -p "$work"
work=$(cd "$work" && pwd)
skip() { echo "SKIP: $*"; exit 77; }

for tool in x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-objdump wine; do
  command -v "$tool" > /dev/null || skip "$tool is not installed (tools/install-deps.sh installs mingw-w64 and wine)"
done

# utf8proc for mingw, built once per build directory.
bash "$src/packaging/windows/fetch_utf8proc.sh" "$work/utf8proc" > "$work/utf8proc.log" 2>&1 \
  || { cat "$work/utf8proc.log"; skip "could not fetch and build utf8proc's source (apt-get source utf8proc)"; }
# jsmn is header-only: copy it, since -I/usr/include would put glibc's headers before mingw's.
mkdir -p "$work/jsmn"
cp /usr/include/jsmn.h "$work/jsmn/"

cmake -S "$src" -B "$work/build" -DCMAKE_TOOLCHAIN_FILE="$src/packaging/mingw-w64.cmake" -DCMAKE_BUILD_TYPE=Release \
  -DIMP_CUDA=OFF -DIMP_BUILD_TESTS=OFF -DIMP_BUILD_TOOLS=OFF -DJSMN_INCLUDE_DIR="$work/jsmn" \
  -DUTF8PROC_INCLUDE_DIR="$work/utf8proc/prefix/include" -DUTF8PROC_LIBRARY="$work/utf8proc/prefix/lib/libutf8proc.a" \
  -DCMAKE_C_FLAGS=-DUTF8PROC_STATIC -DCMAKE_CXX_FLAGS=-DUTF8PROC_STATIC > "$work/configure.log" \
  || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" --target imp generate spec_loop -j 2 > "$work/build.log" 2>&1 \
  || { tail -50 "$work/build.log"; exit 1; }
rm -rf "$work/install"
cmake --install "$work/build" --prefix "$work/install" --component runtime > /dev/null
cmake --install "$work/build" --prefix "$work/install" --component dev > /dev/null
echo "built:"
(cd "$work/install" && find . -type f | sort | sed 's/^/  /')
dll=$work/build/imp.dll
[ -f "$dll" ] && [ -f "$work/build/libimp.dll.a" ] || { echo "FAIL: no imp.dll / libimp.dll.a"; exit 1; }
echo "imp.dll imports from:"
x86_64-w64-mingw32-objdump -p "$dll" | sed -n 's/^\s*DLL Name: /  /p'
# The export table must equal the header's imp_* functions, as on Linux (tests/abi/check_exports.sh).
x86_64-w64-mingw32-objdump -p "$dll" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' \
  | sed -n 's/^[[:space:]]*\[[[:space:]]*[0-9]*\] //p' | sort > "$work/exports.txt"
grep -o 'IMP_CALL imp_[a-z0-9_]*(' "$src/include/imp/imp.h" | sed 's/IMP_CALL //; s/($//' | sort -u > "$work/declared.txt"
diff -u --label declared --label imp.dll "$work/declared.txt" "$work/exports.txt" \
  || { echo "FAIL: imp.dll's exports differ from the header's imp_* functions"; exit 1; }
echo "imp.dll exports exactly the $(wc -l < "$work/exports.txt") imp_* functions of imp.h"

# wine: a private prefix; the first start creates it (a few seconds).
export WINEPREFIX=$work/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if ! timeout 120 wine cmd /c exit > "$work/wine-boot.log" 2>&1; then
  cat "$work/wine-boot.log"
  skip "wine cannot start in this environment"
fi
cp "$dll" "$work/build/examples/"  # Windows finds DLLs beside the executable
run=(bash "$src/examples/run_example.sh" "$src/models/imp-demo" "$src/tests/fixtures/qwen35_dense" "$make_tiny" "$work")
echo "== generate.exe under wine"
"${run[@]}" timeout 300 wine "$work/build/examples/generate.exe" -n 12
echo "== spec_loop.exe under wine"
"${run[@]}" timeout 300 wine "$work/build/examples/spec_loop.exe" -n 16 -k 3 --temp 0.8 --seed 7
echo "OK: imp.dll built with mingw-w64 and the examples ran under wine"
