#!/usr/bin/env bash
# The shared library exports exactly the functions declared IMP_API in the public header, each at version IMP_1
# (packaging/imp.map): no C++ symbol (engine internals, libstdc++ template instances) and no stray C symbol.
# usage: check_exports.sh LIBRARY HEADER
set -euo pipefail
lib=$1 header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every declared function: "IMP_API <type> IMP_CALL imp_name(".
grep -o 'IMP_CALL imp_[a-z0-9_]*(' "$header" | sed 's/IMP_CALL //; s/($//' | sort -u > "$tmp/declared"
# Every defined dynamic symbol, with its version; the version node itself shows up as "A IMP_1".
nm -D --defined-only "$lib" | awk '{print $2, $3}' | grep -v '^A IMP_1$' | sort > "$tmp/exported" || true

status=0
if grep -v -E '^[TW] imp_[a-z0-9_]+@@IMP_1$' "$tmp/exported" > "$tmp/bad"; then
  echo "FAIL: $lib exports symbols that are not versioned imp_* functions:"
  sed 's/^/  /' "$tmp/bad" | head -40
  status=1
fi
sed -n 's/^[TW] \(imp_[a-z0-9_]*\)@@IMP_1$/\1/p' "$tmp/exported" | sort -u > "$tmp/exported_names"
if ! diff -u --label declared-in-header --label exported "$tmp/declared" "$tmp/exported_names"; then
  echo "FAIL: the exported imp_* functions differ from the header's declarations (- declared only, + exported only)"
  status=1
fi
[ $status -eq 0 ] && echo "OK: $(wc -l < "$tmp/declared") imp_* functions exported at IMP_1, nothing else"
exit $status
