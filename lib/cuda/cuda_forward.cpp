// The CUDA backend: the same forward pass as the CPU reference (lib/cpu/cpu_forward.cpp), on one device and one
// stream per instance.
//   x = embed(tokens)
//   per layer: xn = Norm_in(x); x += Mixer(xn); xn = Norm_post(x); x += FFN(xn)   (add + next norm fused)
//   h = Norm_final(x); logits = lm_head(h) for the rows asked for
// and the MTP head with its own KV cache. Weights come from the model's shared device copy (device_weights.h);
// every activation and state buffer is allocated at construction. Batches longer than kMaxRows run in chunks of
// kMaxRows rows (the layers are causal, so the result is that of one batch). Matrix products with at most 16
// rows use the GEMV kernels, longer ones cuBLAS (fp32 accumulation). cuBLAS wants the activations in the weights'
// 16-bit type; one rounding to bf16 per product drifts far from the fp32 reference on some models, so the
// activations are split into hi + lo 16-bit parts and multiplied twice (y = W hi + W lo), which keeps about
// 16 bits of mantissa at twice the tensor-core work. Each call ends with a stream synchronisation, so errors surface in the call that caused
// them as imp::Error(IMP_ERR_BACKEND, "<what>: <cudaGetErrorString>").
#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda_device.h"
#include "cuda/device_weights.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "model/model.h"

#include "attention.cuh"
#include "deltanet.cuh"
#include "elementwise.cuh"
#include "gemv.cuh"
#include "moe.cuh"
#include "norm.cuh"
#include "rope.cuh"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace imp {

bool cuda_device_available() { return cuda_device_count() > 0; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
  cudaGetLastError();  // not sticky, but leave no trace for the next caller
  return n;
}

namespace {

using cuda::check;
using cuda::DLayer;
using cuda::DMat;
namespace k = kernels;

constexpr int kMaxRows = 256;              // activation rows per chunk
constexpr int kMaxKeepRows = kMaxDraft + 1;  // rows whose states a keep_row_states forward can keep
constexpr int kLogitChunk = 32;            // logit rows computed per lm_head pass
constexpr int kMaxSplits = 32;             // split-K partials per (row, head) in decode attention

// One device allocation, freed on destruction.
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(size_t bytes) : bytes_(bytes) {
    if (bytes) check(cudaMalloc(&p_, bytes), "cudaMalloc");
  }
  DevBuf(DevBuf&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
    if (p_) cudaFree(p_);
  }
  template <typename T = float>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

struct KvCache {
  DevBuf k, v;  // (n_ctx, nkv, hd) fp32
};

// Gated DeltaNet state of one layer, and the states a keep_row_states forward keeps: slot 0 the state before the
// batch, slot t+1 the state after row t.
struct LinState {
  DevBuf S;         // (HV, dk, dv)
  DevBuf conv;      // (K-1, conv_dim)
  DevBuf row_S;     // (kMaxKeepRows + 1, HV, dk, dv)
  DevBuf row_conv;  // (kMaxKeepRows + 1, K-1, conv_dim)
};

class CudaSnapshot : public StateSnapshot {
 public:
  int n_past = 0;
  size_t bytes = 0;
  DevBuf data;  // every linear layer's S then conv, in layer order
};

class CudaForward : public ForwardPass {
 public:
  CudaForward(const Model& model, int n_ctx, int device)
      : c_(model.config), n_ctx_(n_ctx), device_(device) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    w_ = cuda::device_weights(model, device_);
    try {
      check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
      check(cublasCreate(&cublas_), "cublasCreate");
      check(cublasSetStream(cublas_, stream_), "cublasSetStream");
      allocate();
      Reset();
    } catch (...) {
      release();  // the buffers free themselves; the handles do not
      throw;
    }
  }

  ~CudaForward() override { release(); }

  int n_past() const override { return n_past_; }
  int n_ctx() const override { return n_ctx_; }

  void Forward(const ForwardBatch& b) override {
    const int T = b.n_tokens, H = c_.n_embd, pos0 = n_past_;
    if (T <= 0 || pos0 + T > n_ctx_) fail(IMP_ERR_INTERNAL, "Forward called with ", T, " tokens at position ", pos0);
    if (b.keep_row_states && T > kMaxKeepRows)
      fail(IMP_ERR_UNSUPPORTED, "the CUDA backend keeps row states for at most ", kMaxKeepRows, " rows; the batch has ", T);
    set_device();
    rows_start_ = rows_end_ = -1;
    int next_logit = 0;  // index into b.logit_rows
    for (int c0 = 0; c0 < T; c0 += kMaxRows) {
      const int n = std::min(kMaxRows, T - c0);
      forward_chunk(b.tokens + c0, n, pos0 + c0, b.keep_row_states);
      // xn holds the post-final-norm hidden of the chunk's rows.
      if (b.hidden)
        check(cudaMemcpyAsync(b.hidden + size_t(c0) * H, xn_.as(), sizeof(float) * n * H, cudaMemcpyDeviceToHost, stream_),
              "copying hidden states");
      int end = next_logit;
      while (end < b.n_logit_rows && b.logit_rows[end] < c0 + n) ++end;
      if (b.logits && end > next_logit)
        lm_head(xn_.as(), b.logit_rows + next_logit, end - next_logit, c0, b.logits + size_t(next_logit) * c_.n_vocab);
      next_logit = end;
      n_past_ = pos0 + c0 + n;
    }
    sync("Forward");
    if (b.keep_row_states) rows_start_ = pos0, rows_end_ = pos0 + T;
  }

  void RollbackTo(int position) override {
    if (rows_start_ < 0 || position < rows_start_ || position > rows_end_)
      fail(IMP_ERR_BAD_STATE, "cannot roll back to position ", position, ": no kept row states cover it");
    set_device();
    const size_t idx = size_t(position - rows_start_);
    for (LinState& s : lin_) {
      copy_d2d(s.S.as(), s.row_S.as<char>() + idx * s.S.bytes(), s.S.bytes());
      copy_d2d(s.conv.as(), s.row_conv.as<char>() + idx * s.conv.bytes(), s.conv.bytes());
    }
    sync("RollbackTo");
    n_past_ = position;  // KV rows past it are dead and get overwritten
  }

  void Reset() override {
    set_device();
    n_past_ = 0;
    rows_start_ = rows_end_ = -1;
    for (LinState& s : lin_) {
      check(cudaMemsetAsync(s.S.as(), 0, s.S.bytes(), stream_), "clearing the DeltaNet state");
      check(cudaMemsetAsync(s.conv.as(), 0, s.conv.bytes(), stream_), "clearing the conv window");
    }
    sync("Reset");
  }

  std::unique_ptr<StateSnapshot> Snapshot() const override {
    set_device();
    auto s = std::make_unique<CudaSnapshot>();
    s->n_past = n_past_;
    s->bytes = lin_bytes();
    s->data = DevBuf(s->bytes);
    char* p = s->data.as<char>();
    for (const LinState& l : lin_) {
      copy_d2d(p, l.S.as(), l.S.bytes());
      p += l.S.bytes();
      copy_d2d(p, l.conv.as(), l.conv.bytes());
      p += l.conv.bytes();
    }
    sync("Snapshot");
    return s;
  }

  void Restore(const StateSnapshot& snapshot) override {
    const auto* s = dynamic_cast<const CudaSnapshot*>(&snapshot);
    if (!s || s->bytes != lin_bytes()) fail(IMP_ERR_INVALID_ARGUMENT, "snapshot is from another model or backend");
    set_device();
    const char* p = s->data.as<char>();
    for (LinState& l : lin_) {
      copy_d2d(l.S.as(), p, l.S.bytes());
      p += l.S.bytes();
      copy_d2d(l.conv.as(), p, l.conv.bytes());
      p += l.conv.bytes();
    }
    sync("Restore");
    n_past_ = s->n_past;
    rows_start_ = rows_end_ = -1;
  }

  // The same tensors, in the same order, as the CPU backend's DumpState.
  std::vector<std::vector<float>> DumpState(int mtp_rows) const override {
    set_device();
    std::vector<std::vector<float>> out;
    const size_t row = size_t(c_.n_head_kv) * c_.head_dim;
    auto fetch = [&](const DevBuf& buf, size_t n) {
      out.emplace_back(n);
      if (n) check(cudaMemcpyAsync(out.back().data(), buf.as(), n * sizeof(float), cudaMemcpyDeviceToHost, stream_), "DumpState");
    };
    for (const KvCache& kv : kv_) {
      fetch(kv.k, size_t(n_past_) * row);
      fetch(kv.v, size_t(n_past_) * row);
    }
    for (const LinState& s : lin_) {
      fetch(s.S, s.S.bytes() / sizeof(float));
      fetch(s.conv, s.conv.bytes() / sizeof(float));
    }
    if (w_->has_mtp) {
      fetch(mtp_kv_.k, size_t(std::clamp(mtp_rows, 0, n_ctx_)) * row);
      fetch(mtp_kv_.v, size_t(std::clamp(mtp_rows, 0, n_ctx_)) * row);
    }
    sync("DumpState");
    out.push_back({float(n_past_)});
    return out;
  }

  void PrefillMtp(const MtpBatch& b) override { mtp(b); }
  void MtpForward(const MtpBatch& b) override { mtp(b); }

 private:
  // ---- buffers -------------------------------------------------------------------------------------------

  void allocate() {
    const int R = std::min(kMaxRows, n_ctx_), H = c_.n_embd, V = c_.n_vocab;
    const int nh = c_.n_head, nkv = c_.n_head_kv, hd = c_.head_dim;
    const int HV = c_.lin_n_v_heads, dk = c_.lin_k_dim, dv = c_.lin_v_dim, K = c_.lin_conv_kernel;
    const int conv_dim = c_.lin_conv_dim();
    const bool has_full = c_.n_layer_of(LayerKind::FullAttention) > 0 || w_->has_mtp;
    const bool has_lin = c_.n_layer_of(LayerKind::LinearAttention) > 0;
    auto f = [](size_t n) { return DevBuf(std::max<size_t>(n, 1) * sizeof(float)); };

    tokens_ = DevBuf(sizeof(int32_t) * R);
    rows_ = DevBuf(sizeof(int32_t) * kLogitChunk);
    x_ = f(size_t(R) * H);
    xn_ = f(size_t(R) * H);
    branch_ = f(size_t(R) * H);
    if (has_full) {
      qg_ = f(size_t(R) * nh * 2 * hd);
      kb_ = f(size_t(R) * nkv * hd);
      vb_ = f(size_t(R) * nkv * hd);
      q_ = f(size_t(R) * nh * hd);
      attn_ = f(size_t(R) * nh * hd);
      work_o_ = f(k::attention::WorkspaceOFloats(nh, hd, kMaxSplits));
      work_ml_ = f(k::attention::WorkspaceMlFloats(nh, kMaxSplits));
    }
    if (has_lin) {
      const int r = HV / std::max(1, c_.lin_n_k_heads);
      const size_t proj = size_t(std::max(conv_dim, 2 * c_.lin_n_k_heads * dk + 2 * c_.lin_n_k_heads * r * dv));
      proj1_ = f(size_t(R) * proj);
      proj2_ = f(size_t(R) * 2 * HV);
      mixed_ = f(size_t(R) * conv_dim);
      z_ = f(size_t(R) * HV * dv);
      b_ = f(size_t(R) * HV);
      a_ = f(size_t(R) * HV);
      conv_out_ = f(size_t(R) * conv_dim);
      o_ = f(size_t(R) * HV * dv);
      y_ = f(size_t(R) * HV * dv);
    }
    const int F = std::max(c_.is_moe ? c_.n_ff_shared : c_.n_ff, 1);
    g_ = f(size_t(R) * F);
    u_ = f(size_t(R) * F);
    if (c_.is_moe) {
      const int E = c_.n_expert, kk = c_.n_expert_used;
      router_ = f(size_t(R) * E);
      topk_idx_ = DevBuf(sizeof(int32_t) * R * kk);
      topk_w_ = f(size_t(R) * kk);
      act_ = f(size_t(R) * kk * c_.n_ff_expert);
      eout_ = f(size_t(R) * kk * H);
      sh_ = f(size_t(R) * H);
      sg_ = f(R);
    }
    if (w_->has_mtp) {
      cat_ = f(size_t(R) * 2 * H);
      hid_in_ = f(size_t(R) * H);
    }
    sel_ = f(size_t(kLogitChunk) * H);
    logits_ = f(size_t(kLogitChunk) * V);
    conv16_ = DevBuf(size_t(R) * std::max(w_->max_cols, 1) * 2 * 2);  // hi and lo parts

    const size_t kv = size_t(n_ctx_) * nkv * hd;
    for (int i = 0; i < c_.n_layer; ++i) {
      if (c_.layer_kinds[i] == LayerKind::FullAttention) {
        layer_slot_.push_back(int(kv_.size()));
        kv_.push_back(KvCache{f(kv), f(kv)});
      } else {
        layer_slot_.push_back(int(lin_.size()));
        LinState s;
        const size_t S = size_t(HV) * dk * dv, cw = size_t(K - 1) * conv_dim;
        s.S = f(S);
        s.conv = f(cw);
        s.row_S = f(S * (kMaxKeepRows + 1));
        s.row_conv = f(cw * (kMaxKeepRows + 1));
        lin_.push_back(std::move(s));
      }
    }
    if (w_->has_mtp) mtp_kv_ = KvCache{f(kv), f(kv)};
    // The caches are read only below n_past, but start from zeros rather than whatever the allocator returns.
    for (KvCache* c : all_kv()) {
      check(cudaMemsetAsync(c->k.as(), 0, c->k.bytes(), stream_), "clearing the KV cache");
      check(cudaMemsetAsync(c->v.as(), 0, c->v.bytes(), stream_), "clearing the KV cache");
    }
  }

  std::vector<KvCache*> all_kv() {
    std::vector<KvCache*> v;
    for (KvCache& c : kv_) v.push_back(&c);
    if (w_->has_mtp) v.push_back(&mtp_kv_);
    return v;
  }

  size_t lin_bytes() const {
    size_t n = 0;
    for (const LinState& l : lin_) n += l.S.bytes() + l.conv.bytes();
    return n;
  }

  void release() {
    cudaSetDevice(device_);
    if (stream_) cudaStreamSynchronize(stream_);
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
    cublas_ = nullptr;
    stream_ = nullptr;
  }

  void set_device() const { check(cudaSetDevice(device_), "cudaSetDevice"); }
  void sync(const char* what) const { check(cudaStreamSynchronize(stream_), what); }
  void copy_d2d(void* dst, const void* src, size_t bytes) const {
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "cudaMemcpy (device to device)");
  }

  // ---- building blocks -----------------------------------------------------------------------------------

  // y (T, W.rows) = x (T, W.cols) @ W^T.
  void matmul(const DMat& W, const float* x, int T, float* y) {
    if (T <= k::gemv::kMaxRows) {
      check(k::gemv::Gemv(W.data, W.wtype, W.rows, W.cols, x, T, y, stream_), "GEMV");
      return;
    }
    // Column-major view: Y (rows x T, ld rows) = op(A) B with A = W stored (cols x rows, ld cols), op = T, and
    // B = X (cols x T, ld cols).
    const float one = 1.0f, zero = 0.0f;
    const void* B = x;
    cudaDataType_t type = CUDA_R_32F;
    const void* B_lo = nullptr;
    if (W.wtype != k::WType::F32) {
      type = W.wtype == k::WType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
      const size_t n = size_t(T) * W.cols;
      void* hi = conv16_.as<void>();
      void* lo = static_cast<char*>(hi) + n * 2;
      check(k::elementwise::ConvertF32(x, n, W.wtype, hi, lo, stream_), "activation conversion");
      B = hi;
      B_lo = lo;
    }
    check(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, W.rows, T, W.cols, &one, W.data, type, W.cols, B, type,
                       W.cols, &zero, y, CUDA_R_32F, W.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
    if (B_lo)
      check(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, W.rows, T, W.cols, &one, W.data, type, W.cols, B_lo, type,
                         W.cols, &one, y, CUDA_R_32F, W.rows, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx (lo part)");
  }

  // logits (n_rows, V) on the host for rows[i] - row0 of h (device, rows of H).
  void lm_head(const float* h, const int32_t* rows, int n_rows, int row0, float* logits) {
    const int H = c_.n_embd, V = c_.n_vocab;
    int32_t ids[kLogitChunk];
    for (int i0 = 0; i0 < n_rows; i0 += kLogitChunk) {
      const int m = std::min(kLogitChunk, n_rows - i0);
      for (int i = 0; i < m; ++i) ids[i] = rows[i0 + i] - row0;
      check(cudaMemcpyAsync(rows_.as(), ids, sizeof(int32_t) * m, cudaMemcpyHostToDevice, stream_), "copying logit rows");
      check(k::elementwise::GatherRows(h, rows_.as<int32_t>(), m, H, sel_.as(), stream_), "GatherRows");
      matmul(w_->lm_head, sel_.as(), m, logits_.as());
      check(cudaMemcpyAsync(logits + size_t(i0) * V, logits_.as(), sizeof(float) * m * V, cudaMemcpyDeviceToHost, stream_),
            "copying logits");
      sync("lm_head");  // ids[] and the device buffers are reused by the next chunk
    }
  }

  void full_attention(const DLayer& L, const float* xn, int T, int pos0, KvCache& cache, float* out) {
    matmul(L.q, xn, T, qg_.as());
    matmul(L.k, xn, T, kb_.as());
    matmul(L.v, xn, T, vb_.as());
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
    rp.n_head = c_.n_head;
    rp.n_head_kv = c_.n_head_kv;
    rp.head_dim = c_.head_dim;
    rp.n_rot = c_.n_rot;
    rp.eps = c_.rms_norm_eps;
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
    ap.n_head = c_.n_head;
    ap.n_head_kv = c_.n_head_kv;
    ap.head_dim = c_.head_dim;
    ap.scale = 1.0f / std::sqrt(float(c_.head_dim));
    ap.work_o = work_o_.as();
    ap.work_ml = work_ml_.as();
    ap.max_splits = kMaxSplits;
    ap.split_keys = split_keys_;
    check(k::attention::Attention(ap, stream_), "attention");
    matmul(L.o, attn_.as(), T, out);
  }

  void deltanet(const DLayer& L, const float* xn, int T, LinState& s, bool keep, float* out) {
    k::deltanet::Dims d;
    d.HK = c_.lin_n_k_heads;
    d.HV = c_.lin_n_v_heads;
    d.dk = c_.lin_k_dim;
    d.dv = c_.lin_v_dim;
    d.K = c_.lin_conv_kernel;
    if (L.fused) {
      matmul(L.qkvz, xn, T, proj1_.as());
      matmul(L.ba, xn, T, proj2_.as());
      check(k::deltanet::Unfuse(proj1_.as(), proj2_.as(), T, d, mixed_.as(), z_.as(), b_.as(), a_.as(), stream_),
            "DeltaNet unfuse");
    } else {
      matmul(L.qkv, xn, T, mixed_.as());
      matmul(L.z, xn, T, z_.as());
      matmul(L.b, xn, T, b_.as());
      matmul(L.a, xn, T, a_.as());
    }
    float* row_conv = nullptr;
    float* row_S = nullptr;
    if (keep) {  // slot 0: the state before the batch; the kernels write slots 1..T
      copy_d2d(s.row_S.as(), s.S.as(), s.S.bytes());
      copy_d2d(s.row_conv.as(), s.conv.as(), s.conv.bytes());
      row_S = s.row_S.as() + s.S.bytes() / sizeof(float);
      row_conv = s.row_conv.as() + s.conv.bytes() / sizeof(float);
    }
    check(k::deltanet::ConvUpdate(mixed_.as(), L.conv, T, d, s.conv.as(), conv_out_.as(), row_conv, stream_),
          "DeltaNet conv");
    check(k::deltanet::Recurrent(conv_out_.as(), b_.as(), a_.as(), L.A, L.dt_bias, T, d, s.S.as(), o_.as(), row_S, stream_),
          "DeltaNet recurrence");
    check(k::norm::GatedRMSNorm(o_.as(), z_.as(), L.norm, T * d.HV, d.dv, c_.rms_norm_eps, y_.as(), stream_),
          "gated RMSNorm");
    matmul(L.out, y_.as(), T, out);
  }

  void ffn(const DLayer& L, const float* xn, int T, float* out) {
    const int H = c_.n_embd;
    if (!c_.is_moe) {
      matmul(L.gate, xn, T, g_.as());
      matmul(L.up, xn, T, u_.as());
      check(k::elementwise::SiluMul(g_.as(), u_.as(), size_t(T) * L.gate.rows, stream_), "SiLU-mul");
      matmul(L.down, g_.as(), T, out);
      return;
    }
    const int E = c_.n_expert, kk = c_.n_expert_used, Fe = c_.n_ff_expert;
    matmul(L.router, xn, T, router_.as());
    check(k::moe::TopK(router_.as(), T, E, kk, c_.norm_topk_prob, topk_idx_.as<int32_t>(), topk_w_.as(), stream_),
          "MoE top-k");
    check(k::moe::ExpertSwiGLU(L.exp_gate, L.exp_up, L.exp_wtype, Fe, H, xn, topk_idx_.as<int32_t>(), T, kk, act_.as(),
                               stream_),
          "MoE experts (gate/up)");
    check(k::moe::ExpertDown(L.exp_down, L.exp_wtype, H, Fe, act_.as(), topk_idx_.as<int32_t>(), T * kk, eout_.as(),
                             stream_),
          "MoE experts (down)");
    const bool shared = !L.shared_gate.empty();
    if (shared) {
      matmul(L.shared_gate, xn, T, g_.as());
      matmul(L.shared_up, xn, T, u_.as());
      check(k::elementwise::SiluMul(g_.as(), u_.as(), size_t(T) * L.shared_gate.rows, stream_), "SiLU-mul");
      matmul(L.shared_down, g_.as(), T, sh_.as());
      matmul(L.shared_expert_gate, xn, T, sg_.as());
    }
    check(k::moe::Combine(eout_.as(), topk_w_.as(), shared ? sh_.as() : nullptr, shared ? sg_.as() : nullptr, T, kk,
                          H, out, stream_),
          "MoE combine");
  }

  // ---- the main model and the MTP head -------------------------------------------------------------------

  // Rows pos0 .. pos0+n-1 (n <= kMaxRows). Leaves the post-final-norm hidden in xn_.
  void forward_chunk(const int32_t* tokens, int n, int pos0, bool keep) {
    const int H = c_.n_embd;
    const float eps = c_.rms_norm_eps;
    check(cudaMemcpyAsync(tokens_.as(), tokens, sizeof(int32_t) * n, cudaMemcpyHostToDevice, stream_), "copying tokens");
    check(k::elementwise::Embed(w_->embed.data, w_->embed.wtype, H, tokens_.as<int32_t>(), n, x_.as(), stream_), "Embed");
    check(k::norm::RMSNorm(x_.as(), H, w_->layers[0].input_norm, n, H, eps, xn_.as(), H, stream_), "RMSNorm");
    for (int i = 0; i < c_.n_layer; ++i) {
      const DLayer& L = w_->layers[i];
      if (L.kind == LayerKind::FullAttention)
        full_attention(L, xn_.as(), n, pos0, kv_[layer_slot_[i]], branch_.as());
      else
        deltanet(L, xn_.as(), n, lin_[layer_slot_[i]], keep, branch_.as());
      check(k::norm::AddRMSNorm(x_.as(), branch_.as(), L.post_norm, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
      ffn(L, xn_.as(), n, branch_.as());
      const float* next = i + 1 < c_.n_layer ? w_->layers[i + 1].input_norm : w_->final_norm;
      check(k::norm::AddRMSNorm(x_.as(), branch_.as(), next, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
    }
  }

  void mtp(const MtpBatch& b) {
    if (!w_->has_mtp) fail(IMP_ERR_UNSUPPORTED, "the model has no MTP head (no mtp.* tensors)");
    const int T = b.n, H = c_.n_embd;
    const float eps = c_.rms_norm_eps;
    if (T <= 0 || b.pos0 < 0 || b.pos0 + T > n_ctx_) fail(IMP_ERR_INTERNAL, "MTP batch out of range");
    set_device();
    const DLayer& L = w_->mtp_layer;
    int next_logit = 0;
    for (int c0 = 0; c0 < T; c0 += kMaxRows) {
      const int n = std::min(kMaxRows, T - c0);
      check(cudaMemcpyAsync(tokens_.as(), b.tokens + c0, sizeof(int32_t) * n, cudaMemcpyHostToDevice, stream_),
            "copying MTP tokens");
      check(cudaMemcpyAsync(hid_in_.as(), b.hidden + size_t(c0) * H, sizeof(float) * n * H, cudaMemcpyHostToDevice, stream_),
            "copying MTP hidden states");
      // cat = [Norm(embed(t_{p+1})) | Norm(h_p)], then x = fc(cat).
      check(k::elementwise::Embed(w_->embed.data, w_->embed.wtype, H, tokens_.as<int32_t>(), n, x_.as(), stream_), "Embed");
      check(k::norm::RMSNorm(x_.as(), H, w_->mtp_norm_embed, n, H, eps, cat_.as(), 2 * H, stream_), "RMSNorm");
      check(k::norm::RMSNorm(hid_in_.as(), H, w_->mtp_norm_hidden, n, H, eps, cat_.as() + H, 2 * H, stream_), "RMSNorm");
      matmul(w_->mtp_fc, cat_.as(), n, x_.as());
      check(k::norm::RMSNorm(x_.as(), H, L.input_norm, n, H, eps, xn_.as(), H, stream_), "RMSNorm");
      full_attention(L, xn_.as(), n, b.pos0 + c0, mtp_kv_, branch_.as());
      check(k::norm::AddRMSNorm(x_.as(), branch_.as(), L.post_norm, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
      ffn(L, xn_.as(), n, branch_.as());
      check(k::norm::AddRMSNorm(x_.as(), branch_.as(), w_->mtp_norm_out, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
      if (b.hidden_out)
        check(cudaMemcpyAsync(b.hidden_out + size_t(c0) * H, xn_.as(), sizeof(float) * n * H, cudaMemcpyDeviceToHost, stream_),
              "copying h_mtp");
      int end = next_logit;
      while (end < b.n_logit_rows && b.logit_rows[end] < c0 + n) ++end;
      if (b.logits && end > next_logit)
        lm_head(xn_.as(), b.logit_rows + next_logit, end - next_logit, c0, b.logits + size_t(next_logit) * c_.n_vocab);
      next_logit = end;
    }
    sync("MTP forward");
  }

  const ModelConfig& c_;
  const int n_ctx_;
  const int device_;
  std::shared_ptr<const cuda::DeviceWeights> w_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  // Keys per split-K attention split: fixed per instance so that a row's result does not depend on its batch.
  const int split_keys_ = std::max(128, ((n_ctx_ + kMaxSplits - 1) / kMaxSplits + 31) / 32 * 32);
  int n_past_ = 0;
  int rows_start_ = -1, rows_end_ = -1;  // positions the kept row states cover

  std::vector<int> layer_slot_;  // layer -> index into kv_ or lin_
  std::vector<KvCache> kv_;
  std::vector<LinState> lin_;
  KvCache mtp_kv_;

  // Activations, (kMaxRows, ·) unless said otherwise.
  DevBuf tokens_, rows_;                 // int32 (kMaxRows), int32 (kLogitChunk)
  DevBuf x_, xn_, branch_;               // (R, H) residual stream, its normed copy, a layer branch
  DevBuf qg_, kb_, vb_, q_, attn_;       // (R, nh*2hd), (R, nkv*hd) x2, (R, nh*hd) x2
  DevBuf work_o_, work_ml_;              // split-K attention partials
  DevBuf proj1_, proj2_;                 // fused DeltaNet projections (R, qkvz rows), (R, 2HV)
  DevBuf mixed_, z_, b_, a_, conv_out_, o_, y_;
  DevBuf g_, u_;                         // (R, F) dense or shared-expert SwiGLU
  DevBuf router_, topk_idx_, topk_w_, act_, eout_, sh_, sg_;
  DevBuf cat_, hid_in_;                  // MTP (R, 2H), (R, H)
  DevBuf sel_, logits_;                  // (kLogitChunk, H), (kLogitChunk, V)
  DevBuf conv16_;                        // 2 x (R, max cols) 16-bit activations (hi, lo) for cuBLAS
};

}  // namespace

std::unique_ptr<ForwardPass> make_cuda_forward(const Model& model, int n_ctx, int device) {
  const int n = cuda_device_count();
  if (n == 0) fail(IMP_ERR_BACKEND, "no CUDA device: the CUDA runtime finds none (driver or GPU missing)");
  if (device < 0 || device >= n) fail(IMP_ERR_INVALID_ARGUMENT, "CUDA device ", device, " does not exist (", n, " present)");
  if (n_ctx <= 0) fail(IMP_ERR_INVALID_ARGUMENT, "n_ctx is ", n_ctx);
  return std::make_unique<CudaForward>(model, n_ctx, device);
}

}  // namespace imp
