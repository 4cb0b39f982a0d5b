#!/usr/bin/env bash
# Builds utf8proc for mingw-w64 from Debian's source package (Debian ships no mingw build of it). The source
# comes through apt with a private deb-src list and state directory (the system's apt setup is not touched);
# apt checks it against the signed Release file as for any package.
# usage: fetch_utf8proc.sh WORK_DIR    -> WORK_DIR/prefix/{include/utf8proc.h,lib/libutf8proc.a}
set -euo pipefail
work=$1
[ -f "$work/prefix/lib/libutf8proc.a" ] && exit 0
rm -rf "$work/apt" "$work/src"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src" "$work/prefix/include" "$work/prefix/lib"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
echo "deb-src http://deb.debian.org/debian $codename main" > "$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "Debug::NoLocking=1"
          -o "APT::Sandbox::User=$(id -un)")
apt-get "${apt_opts[@]}" update -qq
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq utf8proc)
tarball=$(ls "$work"/src/utf8proc_*.orig.tar.gz)
tar -xzf "$tarball" -C "$work/src"
dir=$(ls -d "$work"/src/utf8proc-*/ | head -1)
x86_64-w64-mingw32-gcc-posix -O2 -DUTF8PROC_STATIC -c "$dir/utf8proc.c" -o "$work/src/utf8proc.o"
x86_64-w64-mingw32-ar rcs "$work/prefix/lib/libutf8proc.a" "$work/src/utf8proc.o"
cp "$dir/utf8proc.h" "$work/prefix/include/"
echo "built utf8proc for mingw-w64 from $(basename "$tarball")"
