#!/usr/bin/env bash
# Installs what building and testing libimp needs on Debian (12 or newer), if it is missing.
# Build: cmake, g++, jsmn (JSON), utf8proc (Unicode for the tokenizer). Tests: GoogleTest, valgrind (leak
# checks of the error paths), npm (fetches the real Qwen3 tokenizer.json for the tokenizer goldens).
# Packaging tests: abigail-tools (abidw/abidiff ABI gate), pkg-config (consumer test), dpkg-dev (CPack's
# dpkg-shlibdeps), mingw-w64 + wine (imp.dll cross-build, examples run under wine).
# Bindings tests: mono-mcs + mono-runtime (C#), cargo (Rust; the crates keep to Rust 1.63, Debian 12's).
set -euo pipefail
# package[:command]: with a command named, the package counts as present when the command is on PATH (a
# machine may have npm from NodeSource or cargo from rustup, and Debian's packages would conflict with them).
pkgs=(cmake:cmake g++:g++ make:make libgtest-dev libjsmn-dev libutf8proc-dev valgrind:valgrind npm:npm
      mono-mcs:mcs mono-runtime:mono cargo:cargo abigail-tools:abidiff pkg-config:pkg-config dpkg-dev:dpkg-shlibdeps
      mingw-w64:x86_64-w64-mingw32-g++-posix wine:wine wine64:wine64)
missing=()
for entry in "${pkgs[@]}"; do
  p=${entry%%:*}
  cmd=${entry#*:}
  if [ "$cmd" != "$entry" ] && command -v "$cmd" >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
