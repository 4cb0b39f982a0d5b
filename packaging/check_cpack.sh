#!/usr/bin/env bash
# Runs CPack on the build tree and checks its output: one .tgz with everything, and the Debian packages
# libimp0 (runtime), libimp-dev and imp-tools with their files and dependencies.
# usage: check_cpack.sh BUILD_DIR WORK_DIR VERSION
set -euo pipefail
build=$(cd "$1" && pwd) work=$2 version=$3
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
(cd "$build" && cpack -B "$work" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
ls -l "$work"/*.tgz "$work"/*.deb 2>/dev/null || ls -l "$work"

tgz=$(ls "$work"/libimp-"$version"-*.tgz "$work"/libimp-"$version"-*.tar.gz 2>/dev/null | head -1 || true)
# (listings go to files: `tar | grep -q` would fail under pipefail when grep stops reading early)
tar -tzf "$tgz" > "$work/tgz.txt"
grep -q "include/imp/imp.h$" "$work/tgz.txt" || { echo "FAIL: imp.h not in $tgz"; exit 1; }
grep -q "libimp.so.$version$" "$work/tgz.txt" || { echo "FAIL: libimp.so.$version not in $tgz"; exit 1; }

for pkg in libimp0 libimp-dev; do
  deb=$(ls "$work"/${pkg}_"$version"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { echo "FAIL: no $pkg .deb"; exit 1; }
  echo "== $deb"
  dpkg-deb -f "$deb" Package Version Depends
  dpkg-deb -c "$deb" | awk '{print "  " $6 " " $7 " " $8}'
done
runtime=$(ls "$work"/libimp0_*.deb) dev=$(ls "$work"/libimp-dev_*.deb)
dpkg-deb -c "$runtime" > "$work/runtime.txt"
dpkg-deb -c "$dev" > "$work/dev.txt"
grep -q "libimp.so.$version$" "$work/runtime.txt" || { echo "FAIL: libimp0 lacks the library"; exit 1; }
grep -q "libimp.so.0 -> libimp.so.$version" "$work/runtime.txt" || { echo "FAIL: libimp0 lacks the soname link"; exit 1; }
if grep -q "imp.h\|libimp.so -> " "$work/runtime.txt"; then echo "FAIL: libimp0 holds dev files"; exit 1; fi
dpkg-deb -f "$runtime" Depends > "$work/runtime-depends.txt"
grep -q "libutf8proc" "$work/runtime-depends.txt" || { echo "FAIL: libimp0 does not depend on libutf8proc"; exit 1; }
for f in include/imp/imp.h "libimp.so -> libimp.so.0" cmake/imp/imp-config.cmake pkgconfig/imp.pc; do
  grep -q -- "$f" "$work/dev.txt" || { echo "FAIL: libimp-dev lacks $f"; exit 1; }
done
dpkg-deb -f "$dev" Depends > "$work/dev-depends.txt"
grep -q "libimp0 (= $version)" "$work/dev-depends.txt" || { echo "FAIL: libimp-dev does not depend on libimp0"; exit 1; }
echo "OK: $(basename "$tgz") and $(ls "$work"/*.deb | wc -l) .deb packages"
