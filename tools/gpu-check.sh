#!/usr/bin/env bash
# Builds the CUDA backend for Hopper and checks it on the GPU of this machine:
#   1. configure + build into build-gpu (-DIMP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90), -j16 by default
#   2. ctest, GPU tests included (tests/test_cuda.cpp skips only when no device is seen: that is a failure here)
#   3. compute-sanitizer --tool memcheck on the GPU test binaries (test_cuda_kernels, test_cuda, test_cuda_prefill,
#      test_cuda_fp8, test_cuda_graphs, test_cuda_graphs_engine, test_cuda_quant, test_cuda_sampling)
#   4. the benchmarks of docs/BENCHMARKS.md (imp-bench: demo model MTP, 9B-like random weights; the transformers
#      peer on the same shape when PyTorch and transformers are installed; informational)
# Logs go under $OUT (default ./gpu-logs). Exit status: non-zero when any step fails.
#   usage: tools/gpu-check.sh            (from the repository root)
#   env:   OUT=dir  JOBS=n  BUILD=dir  CUDA_HOME=/usr/local/cuda  IMP_BENCH=0 (skip benchmarks)  IMP_BENCH_ARGS="--model DIR --prompts FILE ..."
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/gpu-logs}"
BUILD="${BUILD:-$ROOT/build-gpu}"
JOBS="${JOBS:-16}"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH"
mkdir -p "$OUT"
status=0
step() { echo "== $*" | tee -a "$OUT/summary.txt"; }

step "device"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed (no driver?)" | tee -a "$OUT/summary.txt"
head -15 "$OUT/nvidia-smi.txt" 2>/dev/null

step "configure + build ($BUILD, -j$JOBS)"
if ! { cmake -S "$ROOT" -B "$BUILD" -DIMP_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
         -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD" -j"$JOBS"; } > "$OUT/build.log" 2>&1; then
  echo "BUILD FAILED (see $OUT/build.log)" | tee -a "$OUT/summary.txt"
  tail -40 "$OUT/build.log"
  exit 1
fi
grep -E "warning" "$OUT/build.log" | sort -u > "$OUT/build-warnings.txt" || true
echo "build ok, $(wc -l < "$OUT/build-warnings.txt") distinct warning lines" | tee -a "$OUT/summary.txt"

# gpu_suite NAME TITLE EXTRA: runs build/tests/NAME with its log at $OUT/NAME.log. A failure, or a skip of its GPU
# tests (this machine's GPU not seen), fails the check; the gtest verdicts and lines matching EXTRA go to the summary.
gpu_suite() {
  local name=$1 title=$2 extra=$3 log="$OUT/$1.log"
  step "$title"
  if ! "$BUILD/tests/$name" > "$log" 2>&1; then
    status=1
    echo "$name FAILED" | tee -a "$OUT/summary.txt"
  fi
  if grep -q "no CUDA device: GPU tests skipped" "$log"; then
    status=1
    echo "$name SKIPPED its GPU tests: this machine's GPU was not seen" | tee -a "$OUT/summary.txt"
  fi
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |$extra" "$log" | tee -a "$OUT/summary.txt"
}
gpu_suite test_cuda_kernels "GPU kernels against CPU loops (test_cuda_kernels)" "max rel err"
gpu_suite test_cuda "GPU whole models against the CPU backend (test_cuda)" "max rel err"
gpu_suite test_cuda_prefill \
  "GPU prefill paths (test_cuda_prefill: chunked DeltaNet, prefill attention, grouped MoE, long prompts)" "max rel err"
gpu_suite test_cuda_fp8 \
  "GPU FP8 draft head (test_cuda_fp8: E4M3 quantise + GEMV kernels, draft logits, greedy MTP parity)" \
  "FP8 draft head|acceptance"
gpu_suite test_cuda_graphs "CUDA graphs (test_cuda_graphs: decode/verify/MTP replays equal the eager path bit for bit)" \
  "graphs recorded"
gpu_suite test_cuda_graphs_engine \
  "CUDA graphs under the engine (test_cuda_graphs_engine: greedy and sampled generation equal with and without graphs)" \
  "no sampled batch was recorded"
gpu_suite test_cuda_quant \
  "GGUF-quantized weights (test_cuda_quant: Q8_0/Q4_K/Q5_K/Q6_K GEMV, dequantisation, quantized GGUF models)" \
  "max rel err"

gpu_suite test_cuda_sampling \
  "GPU sampling kernels (test_cuda_sampling: distributions, draws and speculative acceptance against the CPU sampler)" \
  "max abs err"

step "ctest (all suites)"
# The binding and packaging suites need mono, cargo and dpkg tools that the GPU image lacks; CI runs them.
if ! (cd "$BUILD" && ctest --output-on-failure -E '^(bindings_|package_)' -j"$((JOBS / 2 > 0 ? JOBS / 2 : 1))") > "$OUT/ctest.log" 2>&1; then
  status=1
  echo "ctest FAILED" | tee -a "$OUT/summary.txt"
fi
tail -5 "$OUT/ctest.log" | tee -a "$OUT/summary.txt"

step "lossless speculative sampling on the GPU (chi-square, test_lossless_sampling with IMP_TEST_BACKEND=cuda)"
if ! IMP_TEST_BACKEND=cuda "$BUILD/tests/test_lossless_sampling" > "$OUT/lossless_cuda.log" 2>&1; then
  status=1
  echo "lossless sampling on the GPU FAILED" | tee -a "$OUT/summary.txt"
fi
grep -E "^\[ v|PASSED|FAILED" "$OUT/lossless_cuda.log" | tee -a "$OUT/summary.txt"

step "compute-sanitizer memcheck (the GPU suites' kernel tests and a model or two each)"
SAN="$(command -v compute-sanitizer || echo "$CUDA_HOME/compute-sanitizer/compute-sanitizer")"
# memcheck NAME FILTER LOG: build/tests/NAME under memcheck with the leak check, its log at $OUT/LOG.
memcheck() {
  if ! "$SAN" --tool memcheck --error-exitcode 1 --leak-check full "$BUILD/tests/$1" --gtest_filter="$2" \
       > "$OUT/$3" 2>&1; then
    status=1
    echo "memcheck of $1 FAILED (see $OUT/$3)" | tee -a "$OUT/summary.txt"
  fi
  tail -3 "$OUT/$3" | tee -a "$OUT/summary.txt"
}
if [ -x "$SAN" ]; then
  # The kernel tests and one model of each kind keep the run short; memcheck slows kernels down 10-100x.
  memcheck test_cuda_kernels 'CudaKernels.*' memcheck_kernels.log
  memcheck test_cuda 'Models/CudaModel.*/tiny_*:Models/CudaModel.*/qwen3_next' memcheck.log
  memcheck test_cuda_prefill 'CudaPrefillKernels.*:Models/CudaPrefillModel.*/tiny_wide_moe' memcheck_prefill.log
  memcheck test_cuda_fp8 'CudaFp8Kernels.*:Models/CudaFp8Model.*/tiny_bf16:Models/CudaFp8Model.*/qwen35_moe' memcheck_fp8.log
  memcheck test_cuda_graphs 'CudaGraphKernels.*:Models/CudaGraphModel.*/tiny_f32' memcheck_graphs.log
  memcheck test_cuda_graphs_engine 'CudaGraphs.*' memcheck_graphs_engine.log
  memcheck test_cuda_quant 'CudaQuantKernels.*:Gguf/CudaQuantModel.*/Dense_q4_k_m' memcheck_quant.log
  memcheck test_cuda_sampling 'CudaSamplingKernels.*' memcheck_sampling.log
else
  echo "compute-sanitizer not found: memcheck not run" | tee -a "$OUT/summary.txt"
  status=1
fi

step "benchmarks (IMP_BENCH=0 skips them)"
# The figures of docs/BENCHMARKS.md: the demo model's MTP bench on the CUDA backend, and the 9B-like shape with
# random weights (bandwidth roofline, prefill, per-phase split, MTP cycle costs) in BF16 and Q4_K_M. Informational:
# a benchmark never fails the check. IMP_BENCH_ARGS replaces the demo bench's arguments.
if [ "${IMP_BENCH:-1}" != 0 ] && [ -x "$BUILD/imp-bench" ]; then
  bench() {
    local name=$1; shift
    echo "imp-bench $*" > "$OUT/bench-$name.log"
    # shellcheck disable=SC2086
    timeout 300 "$BUILD/imp-bench" "$@" >> "$OUT/bench-$name.log" 2>&1 ||
      echo "imp-bench $name exited non-zero (see $OUT/bench-$name.log)" | tee -a "$OUT/summary.txt"
    grep -E "plain|k=|^tg|^pp|^GEMV|copy bandwidth|^  [1-4] |^  (host|device) " "$OUT/bench-$name.log" | tee -a "$OUT/summary.txt"
  }
  # shellcheck disable=SC2086
  bench demo ${IMP_BENCH_ARGS:---model "$ROOT/models/imp-demo" --prompts "$ROOT/models/imp-demo/heldout_prompts.json" -n 256 --mtp 1,2,3,4,auto --repeat 2 --backend cuda}
  bench 9b-bf16 --random-weights "$ROOT/configs/qwen35-9b-like.json" --pp 512,4096 --tg 128 --mtp 1,2,3,4 --sampled --gemv
  IMP_GEMV_MMA=1 bench 9b-bf16-mma --random-weights "$ROOT/configs/qwen35-9b-like.json" --pp 16 --tg 128 --mtp 1,2,3,4
  bench 9b-q4_k_m --random-weights "$ROOT/configs/qwen35-9b-like.json" --wtype q4_k_m --pp 512 --tg 128 --mtp 1,2,3
  # The peer figure: transformers on the same shape and GPU (random bf16 weights, generate).
  if python3 -c "import transformers, torch" 2> /dev/null; then
    timeout 300 python3 "$ROOT/tools/bench/hf_peer.py" "$ROOT/configs/qwen35-9b-like.json" --prompt 64 --tokens 128 \
      > "$OUT/bench-hf-peer.log" 2>&1 || echo "hf_peer.py exited non-zero (see $OUT/bench-hf-peer.log)" | tee -a "$OUT/summary.txt"
    grep -E "^transformers" "$OUT/bench-hf-peer.log" | tee -a "$OUT/summary.txt"
  fi
else
  echo "benchmarks skipped (IMP_BENCH=0 or no imp-bench binary)" | tee -a "$OUT/summary.txt"
fi

step "result: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
