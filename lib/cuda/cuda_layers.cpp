// The CUDA backend's building blocks, each the device version of a CPU layer (lib/cpu/): matmul (GEMV for at most
// 16 rows, cuBLAS above; GGUF-quantized weights: quant_gemv's GEMV, or an F16 copy for cuBLAS), lm_head over
// chosen rows, gated full attention, Gated DeltaNet and the FFN (dense or MoE). cuBLAS wants the activations in
// the weights' 16-bit type; one rounding to bf16 per product drifts far from the fp32 reference on some models,
// so the activations are split into hi + lo 16-bit parts and multiplied twice (y = W hi + W lo), which keeps
// about 16 bits of mantissa at twice the tensor-core work.
#include "cuda/cuda_forward.h"

#include "attention.cuh"
#include "attention_prefill.cuh"
#include "deltanet.cuh"
#include "deltanet_chunked.cuh"
#include "elementwise.cuh"
#include "gemv.cuh"
#include "gemv_fp8.cuh"
#include "moe.cuh"
#include "moe_grouped.cuh"
#include "norm.cuh"
#include "quant_gemv.cuh"
#include "rope.cuh"
#include "sampling.cuh"

#include <cmath>

namespace imp::cuda {

namespace k = kernels;

// Prefill paths, by batch rows. Below these the per-row kernels are cheaper (and verify/decode batches must stay on
// them: attention's split-K rows are bit-reproducible across batch sizes, and verify needs the DeltaNet's per-row
// states, which only the recurrent kernel writes). Attention switches at k::attention::kMaxSplitRows.
constexpr int kDeltaNetChunkedMinRows = k::deltanet::kChunk;  // one whole chunk
constexpr int kMoeGroupedMinRows = 32;                         // several slots per expert become likely

// y_i = x W_i^T for matrices that read the same x: one GEMV launch when they lie back to back in the weight
// arena (device_weights places a layer's projections in order) with one float dtype and T <= 16; else one
// matmul each.
void CudaForward::matmul_stacked(std::initializer_list<std::pair<const DMat*, float*>> mats, const float* x, int T) {
  const DMat& first = *mats.begin()->first;
  bool stacked = T <= k::gemv::kMaxRows && int(mats.size()) <= k::gemv::kMaxSegments &&
                 !k::wtype_is_quantized(first.wtype);
  const char* next = static_cast<const char*>(first.data);
  k::gemv::Segments out;
  for (const auto& [W, y] : mats) {
    stacked = stacked && W->wtype == first.wtype && W->cols == first.cols && W->data == next;
    next = static_cast<const char*>(W->data) + size_t(W->rows) * k::wtype_row_bytes(W->wtype, W->cols);
    if (stacked) {
      out.y[out.n] = y;
      out.end[out.n] = (out.n ? out.end[out.n - 1] : 0) + W->rows;
      ++out.n;
    }
  }
  if (stacked) {
    check(k::gemv::GemvSegments(first.data, first.wtype, first.cols, x, T, out, stream_), "GEMV (stacked)");
    return;
  }
  for (const auto& [W, y] : mats) matmul(*W, x, T, y);
}

// y (T, W.rows) = x (T, W.cols) @ W^T.
void CudaForward::matmul(const DMat& W, const float* x, int T, float* y) {
  const bool quantized = k::wtype_is_quantized(W.wtype);
  if (T <= k::gemv::kMaxRows) {
    if (quantized) check(k::quant_gemv::Gemv(W.data, W.wtype, W.rows, W.cols, x, T, y, stream_), "quantized GEMV");
    else check(k::gemv::Gemv(W.data, W.wtype, W.rows, W.cols, x, T, y, stream_), "GEMV");
    return;
  }
  // A quantized W is dequantised into dequant_, a slice of rows at a time, and multiplied as F16. Not BF16: on the
  // Q4_K_M test models bf16's rounding of the dequantised values moved the logits by up to 3% of max|logit|
  // against the CPU's exact values, f16's by 0.3% (the values, f16 scales times small integers, fit f16's range).
  const k::WType wt = quantized ? k::WType::F16 : W.wtype;
  const int slice = quantized ? int(std::min<size_t>(W.rows, dequant_.bytes() / 2 / size_t(W.cols))) : W.rows;
  // Column-major view: Y (rows x T, ld rows) = op(A) B with A = W stored (cols x rows, ld cols), op = T, and
  // B = X (cols x T, ld cols).
  const float one = 1.0f, zero = 0.0f;
  const void* B = x;
  cudaDataType_t type = CUDA_R_32F;
  const void* B_lo = nullptr;
  if (wt != k::WType::F32) {
    type = wt == k::WType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
    const size_t n = size_t(T) * W.cols;
    void* hi = conv16_.as<void>();
    void* lo = static_cast<char*>(hi) + n * 2;
    check(k::elementwise::ConvertF32(x, n, wt, hi, lo, stream_), "activation conversion");
    B = hi;
    B_lo = lo;
  }
  for (int r0 = 0; r0 < W.rows; r0 += slice) {  // rows r0 .. r0+n-1 of W and of Y
    const int n = std::min(slice, W.rows - r0);
    const void* A = static_cast<const char*>(W.data) + size_t(r0) * k::wtype_row_bytes(W.wtype, W.cols);
    if (quantized) {
      check(k::quant_gemv::Dequantize(A, W.wtype, n, W.cols, wt, dequant_.as<void>(), stream_), "dequantising weights");
      A = dequant_.as<void>();
    }
    check(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, T, W.cols, &one, A, type, W.cols, B, type, W.cols, &zero,
                       y + r0, CUDA_R_32F, W.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
    if (B_lo)
      check(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, n, T, W.cols, &one, A, type, W.cols, B_lo, type, W.cols, &one,
                         y + r0, CUDA_R_32F, W.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx (lo part)");
  }
}

// logits (n_rows, V) on the host for rows[i] - row0 of h (device, rows of H), ids [0, vocab_limit) only.
void CudaForward::lm_head(const float* h, const int32_t* rows, int n_rows, int row0, float* logits, int vocab_limit,
                          bool low_precision, int32_t* argmax) {
  if (low_precision && !lm_head_fp8_) lm_head_fp8_ = cuda::lm_head_fp8(w_, stream_);  // once per model and device
  int32_t ids[kLogitChunk];
  for (int i0 = 0; i0 < n_rows; i0 += kLogitChunk) {
    const int m = std::min(kLogitChunk, n_rows - i0);
    for (int i = 0; i < m; ++i) ids[i] = rows[i0 + i] - row0;
    mark(low_precision ? "lm_head (FP8 draft head)" : "lm_head");
    check(cudaMemcpyAsync(rows_.as(), ids, sizeof(int32_t) * m, cudaMemcpyHostToDevice, stream_), "copying logit rows");
    lm_head_rows(h, rows_.as<int32_t>(), m, logits ? logits + size_t(i0) * c_.n_vocab : nullptr, vocab_limit,
                 low_precision, argmax ? argmax + i0 : nullptr);
    sync("lm_head");  // ids[] and the device buffers are reused by the next chunk
  }
}

// The device part of lm_head (a CUDA graph records it with rows_dev and logits in its staging).
void CudaForward::lm_head_rows(const float* h, const int32_t* rows_dev, int m, float* logits, int vocab_limit,
                               bool low_precision, int32_t* argmax, int32_t* argmax_dev) {
  const int H = c_.n_embd, V = c_.n_vocab;
  const int Vl = vocab_limit > 0 && vocab_limit < V ? vocab_limit : V;
  DMat head = w_->lm_head;  // rows [0, Vl) of the row-major head
  head.rows = Vl;
  check(k::elementwise::GatherRows(h, rows_dev, m, H, sel_.as(), stream_), "GatherRows");
  if (low_precision) {  // logits_ (m, Vl)
    for (int j0 = 0; j0 < m; j0 += k::gemv_fp8::kMaxRows) {
      const int mj = std::min(k::gemv_fp8::kMaxRows, m - j0);
      check(k::gemv_fp8::Gemv(lm_head_fp8_->q, lm_head_fp8_->scales, Vl, H, sel_.as() + size_t(j0) * H, mj,
                              logits_.as() + size_t(j0) * Vl, stream_),
            "FP8 GEMV (draft head)");
    }
  } else {
    matmul(head, sel_.as(), m, logits_.as());
  }
  if (argmax || argmax_dev) {  // greedy: m ids cross the bus instead of m x Vl logits
    int32_t* ids = argmax_dev ? argmax_dev : argmax_.as<int32_t>();
    check(k::sampling::Argmax(logits_.as(), m, Vl, ids, stream_), "argmax");
    if (argmax)
      check(cudaMemcpyAsync(argmax, ids, sizeof(int32_t) * m, cudaMemcpyDeviceToHost, stream_), "copying argmax");
  }
  if (logits)
    check(cudaMemcpy2DAsync(logits, sizeof(float) * V, logits_.as(), sizeof(float) * Vl, sizeof(float) * Vl, m,
                            cudaMemcpyDeviceToHost, stream_),
          "copying logits");
}

void CudaForward::full_attention(const DLayer& L, const float* xn, int T, int pos0, KvCache& cache, float* out) {
  mark("attention: q/k/v projections");
  matmul_stacked({{&L.q, qg_.as()}, {&L.k, kb_.as()}, {&L.v, vb_.as()}}, xn, T);
  k::rope::QkNormRopeParams rp;
  rp.qg = qg_.as();
  rp.k = kb_.as();
  rp.v = vb_.as();
  rp.q_norm = L.q_norm;
  rp.k_norm = L.k_norm;
  rp.inv_freq = w_->inv_freq;
  rp.q = q_.as();
  rp.k_cache = cache.k.as();
  rp.v_cache = cache.v.as();
  rp.T = T;
  rp.pos0 = pos0;
  rp.pos0_dev = pos0_dev_;
  rp.n_head = c_.n_head;
  rp.n_head_kv = c_.n_head_kv;
  rp.head_dim = c_.head_dim;
  rp.n_rot = c_.n_rot;
  rp.eps = c_.rms_norm_eps;
  mark("attention: q/k norm, RoPE, KV write");
  check(k::rope::QkNormRopeKvWrite(rp, stream_), "q/k norm + RoPE");
  k::attention::AttentionParams ap;
  ap.q = q_.as();
  ap.gate = qg_.as() + c_.head_dim;
  ap.gate_head_stride = 2 * c_.head_dim;
  ap.k_cache = cache.k.as();
  ap.v_cache = cache.v.as();
  ap.out = attn_.as();
  ap.T = T;
  ap.pos0 = pos0;
  ap.pos0_dev = pos0_dev_;
  ap.n_ctx = n_ctx_;
  ap.n_head = c_.n_head;
  ap.n_head_kv = c_.n_head_kv;
  ap.head_dim = c_.head_dim;
  ap.scale = 1.0f / std::sqrt(float(c_.head_dim));
  ap.work_o = work_o_.as();
  ap.work_ml = work_ml_.as();
  ap.max_splits = kMaxSplits;
  ap.split_keys = split_keys_;
  mark("attention: softmax(qK)V, gate");
  if (T > k::attention::kMaxSplitRows)
    check(k::attention::Prefill(ap, stream_), "attention (prefill)");
  else
    check(k::attention::Attention(ap, stream_), "attention");
  mark("attention: o projection");
  matmul(L.o, attn_.as(), T, out);
}

void CudaForward::deltanet(const DLayer& L, const float* xn, int T, LinState& s, bool keep, float* out) {
  k::deltanet::Dims d;
  d.HK = c_.lin_n_k_heads;
  d.HV = c_.lin_n_v_heads;
  d.dk = c_.lin_k_dim;
  d.dv = c_.lin_v_dim;
  d.K = c_.lin_conv_kernel;
  d.tiled = L.tiled;
  mark("deltanet: in projections");
  if (L.fused) {
    matmul(L.qkvz, xn, T, proj1_.as());
    matmul(L.ba, xn, T, proj2_.as());
    check(k::deltanet::Unfuse(proj1_.as(), proj2_.as(), T, d, mixed_.as(), z_.as(), b_.as(), a_.as(), stream_),
          "DeltaNet unfuse");
  } else {
    matmul_stacked({{&L.qkv, mixed_.as()}, {&L.z, z_.as()}, {&L.b, b_.as()}, {&L.a, a_.as()}}, xn, T);
  }
  mark("deltanet: conv + recurrence (state)");
  float* row_conv = nullptr;
  float* row_S = nullptr;
  if (keep) {  // the kernels write slot 0 (the state before the batch) and slots 1..T
    row_S = s.row_S.as();
    row_conv = s.row_conv.as();
  }
  check(k::deltanet::ConvUpdate(mixed_.as(), L.conv, T, d, s.conv.as(), conv_out_.as(), row_conv, stream_),
        "DeltaNet conv");
  if (!keep && T >= kDeltaNetChunkedMinRows)
    check(k::deltanet::Chunked(conv_out_.as(), b_.as(), a_.as(), L.A, L.dt_bias, T, d, s.S.as(), o_.as(), dn_work_.as(),
                               dn_work_.bytes() / sizeof(float), stream_),
          "DeltaNet chunked recurrence");
  else
    check(k::deltanet::Recurrent(conv_out_.as(), b_.as(), a_.as(), L.A, L.dt_bias, T, d, s.S.as(), o_.as(), row_S,
                                 stream_),
          "DeltaNet recurrence");
  mark("deltanet: gated norm");
  check(k::norm::GatedRMSNorm(o_.as(), z_.as(), L.norm, T * d.HV, d.dv, c_.rms_norm_eps, y_.as(), stream_),
        "gated RMSNorm");
  mark("deltanet: out projection");
  matmul(L.out, y_.as(), T, out);
}

void CudaForward::ffn(const DLayer& L, const float* xn, int T, float* out) {
  const int H = c_.n_embd;
  if (!c_.is_moe) {
    mark("ffn: gate/up projections");
    matmul_stacked({{&L.gate, g_.as()}, {&L.up, u_.as()}}, xn, T);
    check(k::elementwise::SiluMul(g_.as(), u_.as(), size_t(T) * L.gate.rows, stream_), "SiLU-mul");
    mark("ffn: down projection");
    matmul(L.down, g_.as(), T, out);
    return;
  }
  const int E = c_.n_expert, kk = c_.n_expert_used, Fe = c_.n_ff_expert;
  mark("moe: router + top-k");
  matmul(L.router, xn, T, router_.as());
  check(k::moe::TopK(router_.as(), T, E, kk, c_.norm_topk_prob, topk_idx_.as<int32_t>(), topk_w_.as(), stream_),
        "MoE top-k");
  mark("moe: routed experts");
  // The grouped kernels read float expert weights; quantized experts take the per-slot kernels at every T.
  if (T >= kMoeGroupedMinRows && !k::wtype_is_quantized(L.exp_wtype) && !k::wtype_is_quantized(L.exp_down_wtype)) {  // expert weights read once per 8 slots
    int32_t* offsets = moe_offsets_.as<int32_t>();
    int32_t* sorted = moe_sorted_.as<int32_t>();
    check(k::moe::GroupByExpert(topk_idx_.as<int32_t>(), T * kk, E, offsets, sorted, stream_), "MoE grouping by expert");
    check(k::moe::GroupedSwiGLU(L.exp_gate, L.exp_up, L.exp_wtype, Fe, H, xn, kk, offsets, sorted, E, act_.as(), stream_),
          "MoE grouped experts (gate/up)");
    check(k::moe::GroupedDown(L.exp_down, L.exp_down_wtype, H, Fe, act_.as(), offsets, sorted, E, eout_.as(), stream_),
          "MoE grouped experts (down)");
  } else {
    check(k::moe::ExpertSwiGLU(L.exp_gate, L.exp_up, L.exp_wtype, Fe, H, xn, topk_idx_.as<int32_t>(), T, kk,
                               act_.as(), stream_),
          "MoE experts (gate/up)");
    check(k::moe::ExpertDown(L.exp_down, L.exp_down_wtype, H, Fe, act_.as(), topk_idx_.as<int32_t>(), T * kk, eout_.as(),
                             stream_),
          "MoE experts (down)");
  }
  const bool shared = !L.shared_gate.empty();
  if (shared) {
    mark("moe: shared expert");
    matmul_stacked({{&L.shared_gate, g_.as()}, {&L.shared_up, u_.as()}}, xn, T);
    check(k::elementwise::SiluMul(g_.as(), u_.as(), size_t(T) * L.shared_gate.rows, stream_), "SiLU-mul");
    matmul(L.shared_down, g_.as(), T, sh_.as());
    matmul(L.shared_expert_gate, xn, T, sg_.as());
  }
  mark("moe: combine");
  check(k::moe::Combine(eout_.as(), topk_w_.as(), shared ? sh_.as() : nullptr, shared ? sg_.as() : nullptr, T, kk,
                        H, out, stream_),
        "MoE combine");
}

}  // namespace imp::cuda
