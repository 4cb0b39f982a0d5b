// imp-bench --random-weights CONFIG: the CUDA backend on a model of a config.json's shape with seeded random
// weights built on the device (model/random_model.h), so that real sizes (configs/qwen35-9b-like.json,
// configs/qwen36-35b-a3b.json) can be measured without checkpoints. In one run, on one GPU:
//   device   the copy bandwidth (cudaMemcpy device to device, bytes read + written) and the cuBLAS bf16 GEMM
//            rate (fp32 accumulate, as the prefill path calls it): the ceilings the figures below are read against
//   prefill  pp512, pp4096 (--pp): tokens/s and the matmul FLOP rate as a fraction of that GEMM rate
//   decode   tg128 (--tg) through the engine (Engine::decode, greedy, as imp_generate decodes):
//            tok/s, ms/token, and the bytes one step must read (the weights it uses: every matrix of a dense
//            model; for MoE the router, attention, shared expert and top-k routed experts; plus the recurrent
//            states and the KV cache read so far) over the step time, against the copy bandwidth
//   split    the GPU time of one decode step by phase (lib/cuda/phase_timer.h)
//   mtp      --mtp K,..: forced acceptance (Engine::set_forced_acceptance: every draft accepted, output not the
//            model's): the cost of a draft step and of a verify of k+1 rows against a decode step, and the
//            speed-up (1 + a + ... + a^k) / ((verify + k draft) / decode) predicted for acceptance a
//   sampled  --sampled: at temperature 1 (few drafts accepted on random weights), the time of a plain sampled
//            step and of a draft step and a verify per k of --mtp, with sampling on the host (logits copied back)
//            and on the device (kernels/sampling.cuh; Engine::set_device_sampling)
//   VRAM     device memory taken by the weights and by one context
//
//   imp-bench --random-weights configs/qwen35-9b-like.json [--wtype bf16|f16|q8_0|q4_k_m] [--seed S] [--pp 512,4096]
//             [--tg 128] [--mtp 1,2,3,4] [--device N] [--gemv] [--draft-fp8] [--sampled]
//   --gemv   the BF16 GEMV kernel alone at the 9B's FFN and lm_head shapes, for T = 1..16 rows of x
#include "engine/engine.h"
#include "engine/sampler.h"
#include "model/random_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#if defined(IMP_WITH_CUDA)
#include "cuda/cuda_forward.h"

#include "gemv.cuh"
#include "random_fill.cuh"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#endif

namespace imp_bench {

#if !defined(IMP_WITH_CUDA)

int random_weights_main(int, char**) {
  std::fprintf(stderr, "imp-bench: --random-weights needs the CUDA backend; this build has none\n");
  return 2;
}

#else

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "imp-bench: %s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> v;
  for (size_t p = 0; p < s.size();) {
    size_t q = s.find(',', p);
    v.push_back(std::atoi(s.substr(p, q == std::string::npos ? std::string::npos : q - p).c_str()));
    p = q == std::string::npos ? s.size() : q + 1;
  }
  return v;
}

// Device-to-device copy bandwidth, counting bytes read and written; best of 10 copies of 1 GiB.
double copy_bandwidth() {
  const size_t bytes = size_t(1) << 30;
  void *a = nullptr, *b = nullptr;
  cuda_ok(cudaMalloc(&a, bytes), "cudaMalloc");
  cuda_ok(cudaMalloc(&b, bytes), "cudaMalloc");
  cuda_ok(cudaMemset(a, 1, bytes), "cudaMemset");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  float best = 1e30f;
  for (int i = 0; i < 10; ++i) {
    cudaEventRecord(e0);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(e1);
    cuda_ok(cudaEventSynchronize(e1), "copy");
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    best = std::min(best, ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * double(bytes) / (best * 1e-3);
}

// cuBLAS bf16 x bf16 -> fp32 GEMM rate (FLOP/s) at an m x n x k prefill-like shape, best of 10.
double gemm_rate(int m, int n, int k) {
  void *A = nullptr, *B = nullptr, *C = nullptr;
  cuda_ok(cudaMalloc(&A, size_t(m) * k * 2), "cudaMalloc");
  cuda_ok(cudaMalloc(&B, size_t(k) * n * 2), "cudaMalloc");
  cuda_ok(cudaMalloc(&C, size_t(m) * n * 4), "cudaMalloc");
  cudaMemset(A, 0, size_t(m) * k * 2);
  cudaMemset(B, 0, size_t(k) * n * 2);
  cublasHandle_t h;
  cublasCreate(&h);
  const float one = 1.0f, zero = 0.0f;
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  float best = 1e30f;
  for (int i = 0; i < 10; ++i) {
    cudaEventRecord(e0);
    cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, CUDA_R_16BF, k, B, CUDA_R_16BF, k, &zero, C, CUDA_R_32F, m,
                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    cudaEventRecord(e1);
    cuda_ok(cudaEventSynchronize(e1), "cublasGemmEx");
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    best = std::min(best, ms);
  }
  cublasDestroy(h);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(A);
  cudaFree(B);
  cudaFree(C);
  return 2.0 * m * n * k / (best * 1e-3);
}

// The BF16 GEMV kernel alone at one shape: GB/s of weights read for T rows of x (--gemv). Ten launches back to
// back per timing, best of 15 timings: a decode step runs its GEMVs back to back, so the ramp of a lone launch
// would understate what the kernel does there.
void gemv_bandwidth(int rows, int cols) {
  void* W = nullptr;
  float *x = nullptr, *y = nullptr;
  const size_t wbytes = size_t(rows) * cols * 2;
  cuda_ok(cudaMalloc(&W, wbytes), "cudaMalloc");
  cuda_ok(cudaMalloc(reinterpret_cast<void**>(&x), sizeof(float) * 16 * cols), "cudaMalloc");
  cuda_ok(cudaMalloc(reinterpret_cast<void**>(&y), sizeof(float) * 16 * rows), "cudaMalloc");
  cuda_ok(imp::kernels::random_fill::FillUniform(W, imp::kernels::WType::BF16, size_t(rows) * cols, 7, 0.05f, nullptr),
          "FillUniform");
  cuda_ok(imp::kernels::random_fill::FillUniform(x, imp::kernels::WType::F32, size_t(16) * cols, 9, 1.0f, nullptr),
          "FillUniform");
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::printf("GEMV bf16 %d x %d (%.0f MB):", rows, cols, wbytes / 1e6);
  constexpr int kLaunches = 10;
  for (int T : {1, 2, 3, 4, 5, 8, 16}) {
    float best = 1e30f;
    for (int i = 0; i < 16; ++i) {
      cudaEventRecord(e0);
      for (int l = 0; l < kLaunches; ++l)
        cuda_ok(imp::kernels::gemv::Gemv(W, imp::kernels::WType::BF16, rows, cols, x, T, y, nullptr), "Gemv");
      cudaEventRecord(e1);
      cuda_ok(cudaEventSynchronize(e1), "Gemv");
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (i > 0) best = std::min(best, ms / kLaunches);  // the first timing warms up
    }
    std::printf("  T=%d %.0f GB/s", T, wbytes / (best * 1e-3) / 1e9);
  }
  std::printf("\n");
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(W);
  cudaFree(x);
  cudaFree(y);
}

size_t mat_bytes(const imp::Mat& m) { return m.empty() ? 0 : size_t(m.rows) * imp::row_bytes(m.dtype, size_t(m.cols)); }
size_t mat_params(const imp::Mat& m) { return m.empty() ? 0 : size_t(m.rows) * m.cols; }

// Bytes of weights one decode token reads, and matmul parameters one prefill token multiplies (MoE: the k routed
// experts a token uses, counted as distinct).
struct StepCost {
  double weight_bytes = 0, matmul_params = 0;
};

StepCost layer_cost(const imp::ModelConfig& c, const imp::LayerWeights& L) {
  StepCost s;
  auto add = [&](const imp::Mat& m, double share = 1.0) {
    s.weight_bytes += share * mat_bytes(m);
    s.matmul_params += share * mat_params(m);
  };
  for (const imp::Mat* m : {&L.attn.q, &L.attn.k, &L.attn.v, &L.attn.o, &L.lin.qkv, &L.lin.z, &L.lin.b, &L.lin.a,
                            &L.lin.qkvz, &L.lin.ba, &L.lin.out, &L.ffn.gate, &L.ffn.up, &L.ffn.down, &L.ffn.router,
                            &L.ffn.shared_gate, &L.ffn.shared_up, &L.ffn.shared_down, &L.ffn.shared_expert_gate})
    add(*m);
  if (c.is_moe && !L.ffn.exp_gate.empty()) {
    const double used = double(c.n_expert_used);
    add(L.ffn.exp_gate[0], used);
    add(L.ffn.exp_up[0], used);
    add(L.ffn.exp_down[0], used);
  }
  return s;
}

StepCost model_cost(const imp::Model& m) {
  StepCost s;
  for (const imp::LayerWeights& L : m.weights.layers) {
    StepCost l = layer_cost(m.config, L);
    s.weight_bytes += l.weight_bytes;
    s.matmul_params += l.matmul_params;
  }
  s.weight_bytes += mat_bytes(m.weights.lm_head);
  s.matmul_params += mat_params(m.weights.lm_head);
  return s;
}

// Recurrent-state and KV bytes one decode step at position pos reads (states also written back).
double state_bytes(const imp::ModelConfig& c, int pos) {
  const double S = double(c.lin_n_v_heads) * c.lin_k_dim * c.lin_v_dim * 4;
  const double conv = double(c.lin_conv_kernel - 1) * c.lin_conv_dim() * 4;
  const double kv = double(pos) * c.n_head_kv * c.head_dim * 4 * 2;
  return c.n_layer_of(imp::LayerKind::LinearAttention) * 2 * (S + conv) + c.n_layer_of(imp::LayerKind::FullAttention) * kv;
}

size_t device_used() {
  size_t free_b = 0, total = 0;
  cudaMemGetInfo(&free_b, &total);
  return total - free_b;
}

}  // namespace

int random_weights_main(int argc, char** argv) {
  std::string config, wtype = "bf16";
  uint64_t seed = 1;
  std::vector<int> pps = {512, 4096}, ks;
  int tg = 128, device = 0;
  bool gemv = false, draft_fp8 = false, sampled = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&] {
      if (i + 1 >= argc) std::fprintf(stderr, "%s needs a value\n", a.c_str()), std::exit(2);
      return std::string(argv[++i]);
    };
    if (a == "--random-weights") config = val();
    else if (a == "--wtype") wtype = val();
    else if (a == "--seed") seed = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--pp") pps = parse_ints(val());
    else if (a == "--tg") tg = std::atoi(val().c_str());
    else if (a == "--mtp") ks = parse_ints(val());
    else if (a == "--device") device = std::atoi(val().c_str());
    else if (a == "--gemv") gemv = true;
    else if (a == "--draft-fp8") draft_fp8 = true;
    else if (a == "--sampled") sampled = true;
    else {
      std::fprintf(stderr, "usage: imp-bench --random-weights CONFIG.json [--wtype bf16|f16|q8_0|q4_k_m] [--seed S] "
                           "[--pp 512,4096] [--tg 128] [--mtp 1,2,3,4] [--device N] [--gemv] [--draft-fp8] [--sampled]\n");
      return 2;
    }
  }
  try {
    cuda_ok(cudaSetDevice(device), "cudaSetDevice");
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, device);
    std::printf("device %d: %s, %d SMs, %.1f GiB\n", device, prop.name, prop.multiProcessorCount,
                double(prop.totalGlobalMem) / (1u << 30));
    const double copy_bw = copy_bandwidth();
    std::printf("copy bandwidth (device to device, read + write): %.0f GB/s\n", copy_bw / 1e9);
    if (gemv) {
      gemv_bandwidth(12288, 4096);
      gemv_bandwidth(4096, 12288);
      gemv_bandwidth(24576, 4096);
      gemv_bandwidth(248320, 4096);
    }

    const size_t used0 = device_used();
    auto t0 = Clock::now();
    auto model = imp::random_model(config, imp::parse_random_weights_type(wtype), seed);
    const imp::ModelConfig& c = model->config;
    int max_pp = 0;
    for (int p : pps) max_pp = std::max(max_pp, p);
    const int n_ctx = std::max(max_pp, 64 + tg + 8 * 16) + 32;
    auto fwd = imp::make_cuda_forward(*model, n_ctx, device);
    const size_t used_weights_ctx = device_used() - used0;
    auto* cuda_fwd = dynamic_cast<imp::cuda::CudaForward*>(fwd.get());
    imp::Engine engine(*model, std::move(fwd));
    imp::ForwardPass& F = engine.forward();
    const StepCost cost = model_cost(*model);
    std::printf("model %s (%s, seed %llu): %d layers, H %d, vocab %d%s; built on the device in %.1f s\n", config.c_str(),
                wtype.c_str(), (unsigned long long)seed, c.n_layer, c.n_embd, c.n_vocab, c.is_moe ? ", MoE" : "",
                seconds_since(t0));
    std::printf("VRAM: weights + one context of %d positions: %.2f GiB\n", n_ctx, double(used_weights_ctx) / (1u << 30));
    std::printf("bytes one decode token reads: weights %.2f GB (%s), matmul parameters per token %.2f G\n",
                cost.weight_bytes / 1e9, c.is_moe ? "router, attention, shared and top-k routed experts" : "every matrix",
                cost.matmul_params / 1e9);

    std::mt19937 rng{static_cast<unsigned>(seed)};
    std::uniform_int_distribution<int> tok(0, c.n_vocab - 1);
    std::vector<float> logits(size_t(c.n_vocab) * (imp::kMaxDraft + 1));

    // ---- prefill ----
    if (!pps.empty()) {
      const double gemm = gemm_rate(std::min(c.n_ff > 0 ? c.n_ff : 4 * c.n_embd, 16384), 4096, c.n_embd);
      std::printf("cuBLAS bf16 GEMM (fp32 accumulate), %d x 4096 x %d: %.0f TFLOP/s\n",
                  std::min(c.n_ff > 0 ? c.n_ff : 4 * c.n_embd, 16384), c.n_embd, gemm / 1e12);
      for (int P : pps) {
        std::vector<int32_t> prompt(P);
        for (int32_t& t : prompt) t = tok(rng);
        double best = 1e30;
        for (int rep = 0; rep < 2; ++rep) {
          engine.reset();
          int32_t last = P - 1;
          imp::ForwardBatch b;
          b.tokens = prompt.data();
          b.n_tokens = P;
          b.logit_rows = &last;
          b.n_logit_rows = 1;
          b.logits = logits.data();
          auto t1 = Clock::now();
          F.Forward(b);
          best = std::min(best, seconds_since(t1));
        }
        const double flops = 2.0 * cost.matmul_params * P;
        std::printf("pp%-5d %8.0f tok/s  %7.1f ms  matmul %.0f TFLOP/s = %.0f%% of the cuBLAS GEMM rate "
                    "(the fp32-faithful path runs each bf16 GEMM twice, hi + lo)\n",
                    P, P / best, best * 1e3, flops / best / 1e12, 100.0 * flops / best / gemm);
      }
    }

    // ---- decode ----
    const int n_prompt = 64;
    std::vector<int32_t> prompt(n_prompt);
    for (int32_t& t : prompt) t = tok(rng);
    auto decode_run = [&](int steps, double* gpu_only_s) {
      engine.reset();
      engine.prefill(prompt.data(), n_prompt, false, logits.data());
      int32_t next = imp::argmax(logits.data(), c.n_vocab);
      auto t1 = Clock::now();
      for (int i = 0; i < steps; ++i) next = engine.decode(next);
      const double s = seconds_since(t1);
      if (gpu_only_s) {  // the forward alone, logits of the one row to the host, no argmax
        int32_t row = 0;
        imp::ForwardBatch b;
        b.tokens = &next;
        b.n_tokens = 1;
        b.logit_rows = &row;
        b.n_logit_rows = 1;
        b.logits = logits.data();
        auto t2 = Clock::now();
        for (int i = 0; i < 16; ++i) F.Forward(b);
        *gpu_only_s = seconds_since(t2) / 16;
      }
      return s / steps;
    };
    double fwd_s = 0, step = decode_run(tg, &fwd_s);
    step = std::min(step, decode_run(tg, nullptr));
    const double bytes = cost.weight_bytes + state_bytes(c, n_prompt + tg / 2);
    std::printf("tg%-5d %8.1f tok/s  %.3f ms/token  reads %.2f GB/token -> %.0f GB/s = %.0f%% of the copy bandwidth\n", tg,
                1.0 / step, step * 1e3, bytes / 1e9, bytes / step / 1e9, 100.0 * bytes / step / copy_bw);
    std::printf("        forward alone (logits to the host, no argmax): %.3f ms -> %.0f%% of the copy bandwidth\n",
                fwd_s * 1e3, 100.0 * bytes / fwd_s / copy_bw);

    // The main forward alone for T rows kept for rollback with every row's logits, as verify runs it.
    {
      std::printf("forward alone, T rows with row states and logits (verify's GPU part):");
      std::vector<int32_t> rows(imp::kMaxDraft + 1), toks(imp::kMaxDraft + 1);
      for (int i = 0; i <= imp::kMaxDraft; ++i) rows[i] = i, toks[i] = tok(rng);
      for (int T : {1, 2, 3, 4, 5}) {
        double best = 1e30;
        for (int rep = 0; rep < 5; ++rep) {
          const int pos = F.n_past();
          imp::ForwardBatch b;
          b.tokens = toks.data();
          b.n_tokens = T;
          b.logit_rows = rows.data();
          b.n_logit_rows = T;
          b.logits = logits.data();
          b.keep_row_states = true;
          auto t1 = Clock::now();
          F.Forward(b);
          best = std::min(best, seconds_since(t1));
          F.RollbackTo(pos);
        }
        std::printf("  T=%d %.3f ms", T, best * 1e3);
      }
      std::printf("\n");
    }

    // ---- per-phase split of one decode step ----
    if (cuda_fwd) {
      imp::cuda::PhaseTimer& timer = cuda_fwd->phase_timer();
      timer.clear();
      timer.enable(true);
      const int steps = 16;
      decode_run(steps, nullptr);
      timer.enable(false);
      double total = 0;
      for (auto& [name, ms] : timer.totals_ms()) total += ms;
      std::vector<std::pair<double, std::string>> rows;
      for (auto& [name, ms] : timer.totals_ms()) rows.push_back({ms / steps, name});
      std::sort(rows.rbegin(), rows.rend());
      std::printf("split of one decode step (GPU time between phase events, %.3f ms in all):\n", total / steps);
      for (auto& [ms, name] : rows) std::printf("  %-40s %8.3f ms  %5.1f%%\n", name.c_str(), ms, 100.0 * ms * steps / total);
    }

    // ---- MTP cycle costs under forced acceptance ----
    if (!ks.empty() && engine.has_mtp()) {
      const double decode_ms = step * 1e3;
      engine.set_forced_acceptance(true);
      engine.set_draft_head_fp8(draft_fp8);
      if (draft_fp8) std::printf("draft head: FP8 E4M3 copy of the lm_head (--draft-fp8)\n");
      std::printf("MTP, forced acceptance (every draft accepted; output not the model's), decode step %.3f ms:\n", decode_ms);
      std::printf("  k  draft step  (x decode)  verify k+1  (x decode)  tok/s    | predicted speed-up at a = 0.6  0.7  0.8  0.9\n");
      for (int k : ks) {
        if (k < 1 || k > imp::kMaxDraft) continue;
        engine.reset();
        engine.prefill(prompt.data(), n_prompt, false, logits.data());
        int32_t last = imp::argmax(logits.data(), c.n_vocab);
        std::vector<int32_t> drafts(k), out(k + 1);
        const int cycles = std::max(8, tg / (k + 1));
        for (int i = 0; i < 2; ++i) {  // warm-up: the pending MTP rows reach their steady count
          engine.draft(last, k, drafts.data(), nullptr);
          int acc = 0;
          engine.verify(drafts.data(), k, out.data(), k + 1, &acc);
          last = out[k];
        }
        const imp::EngineStats s0 = engine.stats();
        auto t1 = Clock::now();
        for (int i = 0; i < cycles; ++i) {
          engine.draft(last, k, drafts.data(), nullptr);
          int acc = 0;
          engine.verify(drafts.data(), k, out.data(), k + 1, &acc);
          last = out[k];
        }
        const double cycle_s = seconds_since(t1) / cycles;
        const imp::EngineStats& s1 = engine.stats();
        const double draft_ms = (s1.draft_ms - s0.draft_ms) / cycles / k;
        const double verify_ms = (s1.verify_ms - s0.verify_ms) / cycles;
        std::printf("  %-2d %8.3f ms  %8.3fx  %8.3f ms  %8.3fx  %7.1f  |", k, draft_ms, draft_ms / decode_ms, verify_ms,
                    verify_ms / decode_ms, (k + 1) / cycle_s);
        for (double a : {0.6, 0.7, 0.8, 0.9}) {
          double e = 0, p = 1;
          for (int j = 0; j <= k; ++j) e += p, p *= a;
          std::printf(" %4.2f", e / ((verify_ms + k * draft_ms) / decode_ms));
        }
        std::printf("\n");
      }
      engine.set_forced_acceptance(false);
    }

    // ---- sampling at temperature 1: on the host against on the device ----
    if (sampled) {
      imp::SamplingParams sp;
      sp.temperature = 1.0f;
      sp.seed = 1;
      engine.set_sampling(sp);
      engine.set_draft_head_fp8(false);
      std::printf("sampled (temperature 1): ms per plain step | per k: draft step, verify of k+1 rows\n");
      for (bool on_device : {false, true}) {
        engine.set_device_sampling(on_device);
        engine.reset();
        engine.prefill(prompt.data(), n_prompt, false, logits.data());
        int32_t last = engine.sample(logits.data());
        const int steps = std::max(8, tg / 4);
        for (int i = 0; i < 2; ++i) last = engine.decode(last);
        auto t0 = Clock::now();
        for (int i = 0; i < steps; ++i) last = engine.decode(last);
        std::printf("  %-6s plain %7.3f ms |", on_device ? "device" : "host", seconds_since(t0) * 1e3 / steps);
        for (int k : engine.has_mtp() ? ks : std::vector<int>{}) {
          if (k < 1 || k + 1 > imp::kDeviceSampleMaxRows || engine.n_past() + 40 * (k + 1) > engine.n_ctx()) continue;
          std::vector<int32_t> drafts(k), out(k + 1);
          int acc = 0;
          for (int i = 0; i < 2; ++i) {
            engine.draft(last, k, drafts.data(), nullptr);
            last = out[engine.verify(drafts.data(), k, out.data(), k + 1, &acc) - 1];
          }
          const imp::EngineStats s0 = engine.stats();
          const int cycles = 16;
          for (int i = 0; i < cycles; ++i) {
            engine.draft(last, k, drafts.data(), nullptr);
            last = out[engine.verify(drafts.data(), k, out.data(), k + 1, &acc) - 1];
          }
          const imp::EngineStats& s1 = engine.stats();
          std::printf("  k=%d %7.3f + %7.3f ms", k, (s1.draft_ms - s0.draft_ms) / cycles / k,
                      (s1.verify_ms - s0.verify_ms) / cycles);
        }
        std::printf("\n");
      }
      engine.set_device_sampling(true);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "imp-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

#endif

}  // namespace imp_bench
