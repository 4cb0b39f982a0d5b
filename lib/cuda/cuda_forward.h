// The CUDA backend's forward pass (ForwardPass over one device and one stream), declared for the files that
// implement it: cuda_forward.cpp (construction, buffers, state: Forward, rollback, snapshots, the MTP head),
// cuda_layers.cpp (the building blocks: matmul, lm_head, attention, DeltaNet, FFN/MoE) and cuda_graphs.cpp (the
// CUDA graphs that replay a batch of at most kGraphMaxRows rows: decode, verify, MTP steps). Private to lib/cuda.
//
// The computation is that of the CPU reference (lib/cpu/cpu_forward.cpp):
//   x = embed(tokens)
//   per layer: xn = Norm_in(x); x += Mixer(xn); xn = Norm_post(x); x += FFN(xn)   (add + next norm fused)
//   h = Norm_final(x); logits = lm_head(h) for the rows asked for
// and the MTP head with its own KV cache. Weights come from the model's shared device copy (device_weights.h);
// every activation and state buffer is allocated at construction. Batches longer than kMaxRows run in chunks of
// kMaxRows rows (the layers are causal, so the result is that of one batch). Each call ends with a stream
// synchronisation, so errors surface in the call that caused them as
// imp::Error(IMP_ERR_BACKEND, "<what>: <cudaGetErrorString>").
//
// Environment: IMP_CUDA_GRAPHS=0, read when a forward pass is constructed, runs every batch eagerly (no CUDA
// graphs; see cuda_graphs.h). Graphs are on by default and give the same results bit for bit.
#pragma once

#include "core/error.h"
#include "cuda/check.h"
#include "cuda/cuda_graphs.h"
#include "cuda/device_weights.h"
#include "cuda/lm_head_fp8.h"
#include "cuda/phase_timer.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "model/model.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

namespace imp::cuda {

constexpr int kMaxRows = 256;              // activation rows per chunk
constexpr int kMaxKeepRows = kMaxDraft + 1;  // rows whose states a keep_row_states forward can keep
constexpr int kLogitChunk = 32;            // logit rows computed per lm_head pass
constexpr int kMaxSplits = 32;             // split-K partials per (row, head) in decode attention
// F16 values of the prefill dequantisation scratch at most: a larger quantized matrix (a 9B's lm_head is 1G values)
// is dequantised and multiplied in row slices of this size.
constexpr size_t kMaxDequantElems = size_t(64) << 20;

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

class CudaForward final : public ForwardPass {
 public:
  // Graphs on unless IMP_CUDA_GRAPHS=0.
  CudaForward(const Model& model, int n_ctx, int device);
  // use_graphs: record and replay small batches as CUDA graphs (tests compare both ways in one process).
  CudaForward(const Model& model, int n_ctx, int device, bool use_graphs);

  ~CudaForward() override { release(); }

  int n_past() const override { return n_past_; }
  int n_ctx() const override { return n_ctx_; }

  void Forward(const ForwardBatch& b) override;

  void RollbackTo(int position) override;

  void Reset() override;

  std::unique_ptr<StateSnapshot> Snapshot() const override;

  void Restore(const StateSnapshot& snapshot) override;

  // The same tensors, in the same order, as the CPU backend's DumpState.
  std::vector<std::vector<float>> DumpState(int mtp_rows) const override;

  // imp-bench's per-phase split (phase_timer.h): enable, run forwards, read the totals.
  PhaseTimer& phase_timer() { return timer_; }

  // The recorded CUDA graphs (tests check that they are used and that none failed to record).
  const StepGraphs& graphs() const { return graphs_; }

  void PrefillMtp(const MtpBatch& b) override { mtp(b); }
  void MtpForward(const MtpBatch& b) override { mtp(b); }
  bool MtpDraftChain(const MtpChain& chain) override;  // one CUDA graph for the whole chain (cuda_graphs.cpp)
  bool DeviceSampling() const override { return true; }  // kernels/sampling.cuh; eager batches (no graphs yet)

 private:
  // ---- buffers -------------------------------------------------------------------------------------------

  void allocate();

  std::vector<KvCache*> all_kv();

  size_t lin_bytes() const;

  void release();

  void set_device() const { check(cudaSetDevice(device_), "cudaSetDevice"); }
  void sync(const char* what) const {
    check(cudaStreamSynchronize(stream_), what);
    timer_.collect();
  }
  void mark(const char* phase) const { timer_.mark(phase, stream_); }
  void copy_d2d(void* dst, const void* src, size_t bytes) const;

  // ---- building blocks -----------------------------------------------------------------------------------

  // Several matrices on one x: one stacked GEMV launch where they are adjacent (cuda_layers.cpp).
  void matmul_stacked(std::initializer_list<std::pair<const DMat*, float*>> mats, const float* x, int T);

  // y (T, W.rows) = x (T, W.cols) @ W^T.
  void matmul(const DMat& W, const float* x, int T, float* y);

  // logits (n_rows, V) on the host for rows[i] - row0 of h (device, rows of H): only ids [0, vocab_limit) are
  // computed and written (0 = all; the row stride stays V). low_precision: from the FP8 copy of the head
  // (lm_head_fp8.h, built on first use), for the draft head (MtpBatch::low_precision_head).
  // argmax (n_rows), if not null: each row's largest logit's id over [0, vocab_limit), found on the device; logits
  // may then be null (only the ids cross the bus).
  void lm_head(const float* h, const int32_t* rows, int n_rows, int row0, float* logits, int vocab_limit = 0,
               bool low_precision = false, int32_t* argmax = nullptr);

  // The device part of lm_head: logits of rows_dev[i] of h (m <= kLogitChunk; rows_dev on the device), ids
  // [0, vocab_limit) only, copied into logits (host, row stride V). Enqueues only (no synchronisation, no host
  // inputs, no allocation), so that a CUDA graph can record it; the FP8 head must exist when low_precision.
  // argmax_dev, if not null, receives the ids on the device (argmax_ otherwise).
  void lm_head_rows(const float* h, const int32_t* rows_dev, int m, float* logits, int vocab_limit, bool low_precision,
                    int32_t* argmax = nullptr, int32_t* argmax_dev = nullptr);

  // Row t at position pos0 + t, plus *pos0_dev_ while a CUDA graph is being recorded.
  void full_attention(const DLayer& L, const float* xn, int T, int pos0, KvCache& cache, float* out);

  void deltanet(const DLayer& L, const float* xn, int T, LinState& s, bool keep, float* out);

  void ffn(const DLayer& L, const float* xn, int T, float* out);

  // ---- sampling on the device (cuda_sampling.cpp) ---------------------------------------------------------

  // The buffers, allocated on the first sampled batch (about 24 bytes per logit of kDeviceSampleMaxRows rows of
  // scratch, plus the p and q rows): contexts that never sample at temperature > 0 do not pay for them.
  void ensure_sampling_buffers();
  // logits_ holds a draft step's one row over [0, vocab_limit): q into its slot, a token drawn from it.
  void sample_draft(const DraftSample& ds, int vocab_limit);
  // After sync: q(token) of the drawn token, if asked.
  void finish_draft_sample(const DraftSample& ds);
  // logits_ holds the T rows of a verify batch: target distributions, then the accept/reject loop.
  void sample_verify(const VerifySample& vs, int T);
  // The device work of the two, with the draws and drafts already on the device and the token / verdict left
  // there (what a CUDA graph records; the functions above copy in and out around them).
  void enqueue_draft_sample(const SampleParams& p, int slot, int vocab_limit, const double* uniform_dev,
                            int32_t* token_dev);
  void enqueue_verify_sample(const SampleParams& p, int T, const int32_t* drafts_dev, const double* uniforms_dev,
                             int32_t* result_dev);
  // Where the eager path keeps a draft's token and a verify's verdict ({accepted, next, draws used}) on the device.
  int32_t* sampled_token_dev();
  int32_t* verdict_dev();

  // ---- the main model and the MTP head -------------------------------------------------------------------

  // Rows pos0 .. pos0+n-1 (n <= kMaxRows). Leaves the post-final-norm hidden in xn_.
  void forward_chunk(const int32_t* tokens, int n, int pos0, bool keep);
  // The same with the tokens already on the device (forward_chunk copies them; a graph has them copied).
  void main_rows(const int32_t* tokens_dev, int n, int pos0, bool keep);

  // The MTP layer over rows pos0 .. pos0+n-1 (n <= kMaxRows) fed tokens_dev and hid_in_; leaves h_mtp in xn_.
  void mtp_rows(const int32_t* tokens_dev, int n, int pos0);

  // ---- CUDA graphs (cuda_graphs.cpp): false = not graphed, run the batch eagerly ---------------------------

  bool forward_graphed(const ForwardBatch& b);
  bool mtp_graphed(const MtpBatch& b);

  void mtp(const MtpBatch& b);

  const ModelConfig& c_;
  const int n_ctx_;
  const int device_;
  std::shared_ptr<const cuda::DeviceWeights> w_;
  std::shared_ptr<const Fp8Mat> lm_head_fp8_;  // null until a batch asks for the low-precision head
  mutable PhaseTimer timer_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  // Keys per split-K attention split: fixed per instance so that a row's result does not depend on its batch.
  const int split_keys_ = std::max(128, ((n_ctx_ + kMaxSplits - 1) / kMaxSplits + 31) / 32 * 32);
  StepGraphs graphs_;
  const int32_t* pos0_dev_ = nullptr;  // while a graph is recorded: the device copy of the batch's position
  int n_past_ = 0;
  int rows_start_ = -1, rows_end_ = -1;  // positions the kept row states cover
  int state_slot_ = -1;                  // the row-state slot that S and conv now hold (RollbackTo)

  std::vector<int> layer_slot_;  // layer -> index into kv_ or lin_
  std::vector<KvCache> kv_;
  std::vector<LinState> lin_;
  KvCache mtp_kv_;
  DevBuf samp_work_, samp_p_, samp_q_;  // sampling scratch, target rows (kDeviceSampleMaxRows, V), q slots (same)
  DevBuf samp_io_;                      // uniforms (double), drafts, result and token (int32): see cuda_sampling.cpp
  DevBuf rollback_spans_;      // k::elementwise::CopySpan (2 per DeltaNet layer): RollbackTo's copies
  size_t rollback_max_n_ = 0;  // the largest span

  // Activations, (kMaxRows, ·) unless said otherwise.
  DevBuf tokens_, rows_;                 // int32 (kMaxRows), int32 (kLogitChunk)
  DevBuf x_, xn_, branch_;               // (R, H) residual stream, its normed copy, a layer branch
  DevBuf qg_, kb_, vb_, q_, attn_;       // (R, nh*2hd), (R, nkv*hd) x2, (R, nh*hd) x2
  DevBuf work_o_, work_ml_;              // split-K attention partials
  DevBuf proj1_, proj2_;                 // fused DeltaNet projections (R, qkvz rows), (R, 2HV)
  DevBuf mixed_, z_, b_, a_, conv_out_, o_, y_;
  DevBuf g_, u_;                         // (R, F) dense or shared-expert SwiGLU
  DevBuf router_, topk_idx_, topk_w_, act_, eout_, sh_, sg_;
  DevBuf dn_work_;                       // chunked DeltaNet workspace (deltanet::ChunkedWorkspaceFloats(R))
  DevBuf moe_offsets_, moe_sorted_;      // int32 (E + 1), int32 (R * k): the slots grouped by expert
  DevBuf cat_, hid_in_;                  // MTP (R, 2H), (R, H)
  DevBuf sel_, logits_;                  // (kLogitChunk, H), (kLogitChunk, V)
  DevBuf argmax_;                        // int32 (kLogitChunk): device argmax of logits_ rows
  DevBuf conv16_;                        // 2 x (R, max cols) 16-bit activations (hi, lo) for cuBLAS
  DevBuf dequant_;                       // F16 (min(largest quantized matrix, kMaxDequantElems)) or none: the
                                         // quantized weights of a matmul above 16 rows, dequantised for cuBLAS
};


}  // namespace imp::cuda
