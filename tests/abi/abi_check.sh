#!/usr/bin/env bash
# The ABI gate (docs/ABI.md). Dumps a -g build of libimp.so with abidw, restricted to the types of the public
# header, and compares it with abidiff against the committed baseline.
#
#   abi_check.sh check        LIB HEADERS_DIR BASELINE SUPPRESSIONS OUT_DIR   fails on any reported change
#   abi_check.sh expect-break LIB HEADERS_DIR BASELINE SUPPRESSIONS OUT_DIR   fails unless a change is reported
#   abi_check.sh update       LIB HEADERS_DIR BASELINE                        rewrites the baseline
#
# abidiff's exit status is a bit set: 1 tool error, 2 usage error, 4 an ABI change (a type changed: review it),
# 8 an incompatible change (a function removed). Added functions are not reported (--no-added-syms): appending
# to the C API is compatible; tests/abi/check_exports.sh keeps the export list equal to the header.
set -euo pipefail
mode=$1 lib=$2 headers=$3 baseline=$4
here=$(cd "$(dirname "$0")" && pwd)
dump_filter=$here/../../packaging/abi/dump.abignore
dump() {
  abidw --headers-dir "$headers" --drop-private-types --suppressions "$dump_filter" \
        --no-corpus-path --no-comp-dir-path --short-locs \
        "$lib"
}
# Without DWARF, abidw writes symbols only and abidiff would compare nothing: refuse such a dump.
check_dump() {
  grep -q '<class-decl name=.imp_model_info' "$1" || { echo "FAIL: $1 has no type information (built without -g?)"; exit 1; }
}

if [ "$mode" = update ]; then
  dump > "$baseline"
  check_dump "$baseline"
  echo "wrote $baseline from $lib ($(grep -c '<function-decl' "$baseline") functions)"
  exit 0
fi

suppressions=$5 out=$6
mkdir -p "$out"
dump > "$out/current.abi"
check_dump "$out/current.abi"
set +e
abidiff --no-added-syms --suppressions "$suppressions" "$baseline" "$out/current.abi" > "$out/abidiff.txt" 2>&1
rc=$?
set -e
cat "$out/abidiff.txt"
echo "abidiff exit status: $rc (1 error, 2 usage error, 4 ABI change, 8 incompatible change)"

case "$mode" in
  check)
    if [ $((rc & 3)) -ne 0 ]; then echo "FAIL: abidiff could not compare"; exit 1; fi
    if [ $((rc & 8)) -ne 0 ]; then
      echo "FAIL: incompatible ABI change (a function was removed or changed its symbol) against $baseline"
      exit 1
    fi
    if [ $((rc & 4)) -ne 0 ]; then
      echo "FAIL: the ABI changed against $baseline. If the change is compatible (e.g. an appended enum value"
      echo "or a field appended to a size-versioned params struct), update the baseline or add a suppression"
      echo "with a reason, as docs/ABI.md describes; otherwise bump IMP_ABI_VERSION and the SOVERSION."
      exit 1
    fi
    echo "OK: no ABI change against $baseline"
    ;;
  expect-break)
    if [ $((rc & 3)) -ne 0 ]; then echo "FAIL: abidiff could not compare"; exit 1; fi
    if [ $((rc & 12)) -eq 0 ]; then echo "FAIL: the deliberately broken library passed the ABI gate"; exit 1; fi
    if ! grep -q "imp_model_info" "$out/abidiff.txt"; then
      echo "FAIL: abidiff reported a change, but not the broken struct imp_model_info"; exit 1
    fi
    echo "OK: the gate catches the deliberate break of imp_model_info"
    ;;
  *) echo "unknown mode $mode"; exit 2 ;;
esac
