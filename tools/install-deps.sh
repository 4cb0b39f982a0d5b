#!/usr/bin/env bash
# Installs what building and testing libimp needs on Debian (12 or newer), if it is missing.
# Build: cmake, g++, jsmn (JSON), utf8proc (Unicode for the tokenizer). Tests: GoogleTest, valgrind (leak
# checks of the error paths), npm (fetches the real Qwen3 tokenizer.json for the tokenizer goldens).
# Packaging tests: abigail-tools (abidw/abidiff ABI gate), pkg-config (consumer test), dpkg-dev (CPack's
# dpkg-shlibdeps), mingw-w64 + wine (imp.dll cross-build, examples run under wine).
# Bindings tests: mono-mcs + mono-runtime (C#), cargo (Rust; the crates keep to Rust 1.63, Debian 12's).
set -euo pipefail
pkgs=(cmake g++ make libgtest-dev libjsmn-dev libutf8proc-dev valgrind npm mono-mcs mono-runtime cargo)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
