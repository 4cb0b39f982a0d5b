#!/usr/bin/env bash
# Runs an example on the best model there is (see examples/CMakeLists.txt): the demo model with a text prompt,
# else the transformers fixture, else a random tiny model, with token-id prompts.
# usage: run_example.sh DEMO_DIR FIXTURE_DIR MAKE_TINY_MODEL WORK_DIR EXAMPLE [ARGS...]
set -euo pipefail
demo=$1 fixture=$2 make_tiny=$3 work=$4
shift 4
if [ -f "$demo/config.json" ] && [ -f "$demo/tokenizer.json" ]; then
  echo "model: $demo (text prompt)"
  exec "$@" "$demo" -p "Once upon a time, there was a little robot who"
fi
if [ -f "$fixture/config.json" ]; then
  echo "model: $fixture (no demo model at $demo; token-id prompt)"
  exec "$@" "$fixture" -t 1,5,9,2,7,3,11,4
fi
tiny=$work/tiny-model
if [ ! -f "$tiny/model.safetensors" ]; then
  # Written aside and renamed, so examples running in parallel never see half a model.
  mkdir -p "$work"
  tmp=$(mktemp -d "$work/tiny-model.XXXXXX")
  "$make_tiny" "$tmp"
  mv -T "$tmp" "$tiny" 2>/dev/null || rm -rf "$tmp"
fi
echo "model: random tiny model $tiny (no demo model at $demo, no fixture at $fixture; token-id prompt)"
exec "$@" "$tiny" -t 1,5,9,2,7,3,11,4
