#!/usr/bin/env bash
# Installs the build tree into a fresh prefix and uses it from outside, twice: a CMake project with
# find_package(imp), and a plain compiler line with pkg-config. Also checks the installed layout, the soname
# links and the $ORIGIN RUNPATH.
# usage: run.sh BUILD_DIR WORK_DIR C_COMPILER
set -euo pipefail
build=$(cd "$1" && pwd) work=$2 cc=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
libdir=$(cd "$prefix" && dirname "$(find . -name 'libimp.so.*.*.*' | head -1)")
version=$(basename "$(ls "$prefix/$libdir"/libimp.so.*.*.*)" | sed 's/^libimp\.so\.//')
echo "installed libimp $version into $prefix ($libdir):"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')
for f in include/imp/imp.h "$libdir/libimp.so.$version" "$libdir/libimp.so.${version%%.*}" "$libdir/libimp.so" \
         "$libdir/cmake/imp/imp-config.cmake" "$libdir/cmake/imp/imp-config-version.cmake" \
         "$libdir/cmake/imp/imp-targets.cmake" "$libdir/pkgconfig/imp.pc"; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f is not installed"; exit 1; }
done
[ "$(readlink "$prefix/$libdir/libimp.so")" = "libimp.so.${version%%.*}" ] || { echo "FAIL: libimp.so link"; exit 1; }
readelf -d "$prefix/$libdir/libimp.so.$version" | grep "(SONAME).*\[libimp.so.${version%%.*}\]" > /dev/null \
  || { echo "FAIL: soname"; exit 1; }
readelf -d "$prefix/$libdir/libimp.so.$version" | grep '(RUNPATH).*\[\$ORIGIN\]' > /dev/null \
  || { echo "FAIL: the installed library's RUNPATH is not \$ORIGIN"; readelf -d "$prefix/$libdir/libimp.so.$version"; exit 1; }
if [ -e "$prefix/bin/imp-cli" ]; then
  readelf -d "$prefix/bin/imp-cli" | grep '(RUNPATH).*\[\$ORIGIN/\.\./' > /dev/null \
    || { echo "FAIL: imp-cli's RUNPATH is not \$ORIGIN/../lib"; exit 1; }
fi

# 1. CMake: find_package(imp) -> imp::imp
cmake -S "$here" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" > "$work/cmake.log"
cmake --build "$work/cmake-build" > "$work/cmake-build.log"
readelf -d "$work/cmake-build/consumer" | grep "(NEEDED).*\[libimp.so.${version%%.*}\]" > /dev/null \
  || { echo "FAIL: the consumer does not link the soname libimp.so.${version%%.*}"; exit 1; }
echo "find_package(imp):"
"$work/cmake-build/consumer"

# 2. pkg-config (the .pc finds its prefix from its own location)
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
[ "$(pkg-config --modversion imp)" = "$version" ] || { echo "FAIL: pkg-config --modversion"; exit 1; }
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -pedantic -Werror "$here/main.c" -o "$work/consumer-pc" $(pkg-config --cflags --libs imp) \
  -Wl,-rpath,"$(pkg-config --variable=libdir imp)"
echo "pkg-config:"
"$work/consumer-pc"
echo "OK: the installed package works with find_package(imp) and with pkg-config"
