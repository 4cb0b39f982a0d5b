// The CUDA backend's forward pass: construction, the buffers, the state operations (Forward, rollback, snapshots)
// and the MTP head. The layers are in cuda_layers.cpp; the class and its buffers in cuda_forward.h.
#include "cuda/cuda_forward.h"

#include "cuda/cuda_device.h"

#include "attention.cuh"
#include "deltanet_chunked.cuh"
#include "elementwise.cuh"
#include "norm.cuh"

#include <cstring>

namespace imp {

bool cuda_device_available() { return cuda_device_count() > 0; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
  cudaGetLastError();  // not sticky, but leave no trace for the next caller
  return n;
}

namespace cuda {

namespace k = kernels;

CudaForward::CudaForward(const Model& model, int n_ctx, int device)
    : CudaForward(model, n_ctx, device, cuda_graphs_enabled_by_env()) {}

CudaForward::CudaForward(const Model& model, int n_ctx, int device, bool use_graphs)
    : c_(model.config), n_ctx_(n_ctx), device_(device) {
  check(cudaSetDevice(device_), "cudaSetDevice");
  w_ = cuda::device_weights(model, device_);
  try {
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cublasCreate(&cublas_), "cublasCreate");
    check(cublasSetStream(cublas_, stream_), "cublasSetStream");
    allocate();
    graphs_.init(use_graphs, c_.n_embd, c_.n_vocab);
    Reset();
  } catch (...) {
    release();  // the buffers free themselves; the handles do not
    throw;
  }
}

void CudaForward::Forward(const ForwardBatch& b) {
  const int T = b.n_tokens, H = c_.n_embd, pos0 = n_past_;
  if (T <= 0 || pos0 + T > n_ctx_) fail(IMP_ERR_INTERNAL, "Forward called with ", T, " tokens at position ", pos0);
  if (b.keep_row_states && T > kMaxKeepRows)
    fail(IMP_ERR_UNSUPPORTED, "the CUDA backend keeps row states for at most ", kMaxKeepRows, " rows; the batch has ", T);
  if (b.verify_sample && (T > kDeviceSampleMaxRows || b.logits || b.argmax))
    fail(IMP_ERR_INTERNAL, "a sampled verify batch has at most ", kDeviceSampleMaxRows, " rows and asks for no logits");
  set_device();
  rows_start_ = rows_end_ = -1;
  if (forward_graphed(b)) {
    n_past_ = pos0 + T;
    if (b.keep_row_states) rows_start_ = pos0, rows_end_ = pos0 + T, state_slot_ = T;
    return;
  }
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
    if ((b.logits || b.argmax) && end > next_logit)
      lm_head(xn_.as(), b.logit_rows + next_logit, end - next_logit, c0,
              b.logits ? b.logits + size_t(next_logit) * c_.n_vocab : nullptr, 0, false,
              b.argmax ? b.argmax + next_logit : nullptr);
    next_logit = end;
    n_past_ = pos0 + c0 + n;
  }
  if (b.verify_sample) {  // every row (T <= kDeviceSampleMaxRows: one chunk, xn_ holds them all)
    int32_t rows[kDeviceSampleMaxRows];
    for (int i = 0; i < T; ++i) rows[i] = i;
    check(cudaMemcpyAsync(rows_.as(), rows, sizeof(int32_t) * T, cudaMemcpyHostToDevice, stream_), "copying logit rows");
    lm_head_rows(xn_.as(), rows_.as<int32_t>(), T, nullptr, 0, false);
    sample_verify(*b.verify_sample, T);
  }
  mark(nullptr);
  sync("Forward");
  if (b.keep_row_states) rows_start_ = pos0, rows_end_ = pos0 + T, state_slot_ = T;
}

void CudaForward::RollbackTo(int position) {
  if (rows_start_ < 0 || position < rows_start_ || position > rows_end_)
    fail(IMP_ERR_BAD_STATE, "cannot roll back to position ", position, ": no kept row states cover it");
  set_device();
  // S and conv hold slot state_slot_ (after the batch: its last row's, which the kernels leave there), so nothing
  // is copied when every row stands (every draft accepted). Otherwise slot position - rows_start_ of every
  // layer's row states, in one launch. No synchronisation: what comes next on the stream sees the copies.
  const int slot = position - rows_start_;
  if (slot != state_slot_) {
    check(k::elementwise::CopySlots(rollback_spans_.as<k::elementwise::CopySpan>(), int(2 * lin_.size()),
                                    rollback_max_n_, slot, stream_),
          "restoring the recurrent states");
    state_slot_ = slot;
  }
  n_past_ = position;  // KV rows past it are dead and get overwritten
}

void CudaForward::Reset() {
  set_device();
  n_past_ = 0;
  rows_start_ = rows_end_ = -1;
  for (LinState& s : lin_) {
    check(cudaMemsetAsync(s.S.as(), 0, s.S.bytes(), stream_), "clearing the DeltaNet state");
    check(cudaMemsetAsync(s.conv.as(), 0, s.conv.bytes(), stream_), "clearing the conv window");
  }
  sync("Reset");
}

std::unique_ptr<StateSnapshot> CudaForward::Snapshot() const {
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

void CudaForward::Restore(const StateSnapshot& snapshot) {
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
std::vector<std::vector<float>> CudaForward::DumpState(int mtp_rows) const {
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

void CudaForward::allocate() {
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
    k::deltanet::Dims d;
    d.HK = c_.lin_n_k_heads, d.HV = HV, d.dk = dk, d.dv = dv, d.K = K;
    dn_work_ = f(k::deltanet::ChunkedWorkspaceFloats(R, d));
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
    moe_offsets_ = DevBuf(sizeof(int32_t) * (E + 1));
    moe_sorted_ = DevBuf(sizeof(int32_t) * R * kk);
  }
  if (w_->has_mtp) {
    cat_ = f(size_t(R) * 2 * H);
    hid_in_ = f(size_t(R) * H);
  }
  sel_ = f(size_t(kLogitChunk) * H);
  logits_ = f(size_t(kLogitChunk) * V);
  argmax_ = DevBuf(sizeof(int32_t) * kLogitChunk);
  conv16_ = DevBuf(size_t(R) * std::max(w_->max_cols, 1) * 2 * 2);  // hi and lo parts
  if (w_->max_quant_elems)  // at least one row of the widest matrix, so that a slice is never empty
    dequant_ = DevBuf(std::min(w_->max_quant_elems, std::max(kMaxDequantElems, size_t(w_->max_cols))) * 2);

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
  // RollbackTo's copies: each layer's S and conv window from a slot of its row states.
  if (!lin_.empty()) {
    std::vector<k::elementwise::CopySpan> spans;
    for (LinState& s : lin_) {
      spans.push_back({s.S.as(), s.row_S.as(), s.S.bytes() / sizeof(float)});
      spans.push_back({s.conv.as(), s.row_conv.as(), s.conv.bytes() / sizeof(float)});
      rollback_max_n_ = std::max({rollback_max_n_, spans[spans.size() - 2].n, spans.back().n});
    }
    rollback_spans_ = DevBuf(spans.size() * sizeof(k::elementwise::CopySpan));
    check(cudaMemcpy(rollback_spans_.as(), spans.data(), rollback_spans_.bytes(), cudaMemcpyHostToDevice),
          "copying the rollback table");
  }
  // The caches are read only below n_past, but start from zeros rather than whatever the allocator returns.
  for (KvCache* c : all_kv()) {
    check(cudaMemsetAsync(c->k.as(), 0, c->k.bytes(), stream_), "clearing the KV cache");
    check(cudaMemsetAsync(c->v.as(), 0, c->v.bytes(), stream_), "clearing the KV cache");
  }
}

std::vector<KvCache*> CudaForward::all_kv() {
  std::vector<KvCache*> v;
  for (KvCache& c : kv_) v.push_back(&c);
  if (w_->has_mtp) v.push_back(&mtp_kv_);
  return v;
}

size_t CudaForward::lin_bytes() const {
  size_t n = 0;
  for (const LinState& l : lin_) n += l.S.bytes() + l.conv.bytes();
  return n;
}

void CudaForward::release() {
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_);
  graphs_.release();
  if (cublas_) cublasDestroy(cublas_);
  if (stream_) cudaStreamDestroy(stream_);
  cublas_ = nullptr;
  stream_ = nullptr;
}

void CudaForward::copy_d2d(void* dst, const void* src, size_t bytes) const {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "cudaMemcpy (device to device)");
}

// Rows pos0 .. pos0+n-1 (n <= kMaxRows). Leaves the post-final-norm hidden in xn_.
void CudaForward::forward_chunk(const int32_t* tokens, int n, int pos0, bool keep) {
  mark("embed + first norm");
  check(cudaMemcpyAsync(tokens_.as(), tokens, sizeof(int32_t) * n, cudaMemcpyHostToDevice, stream_), "copying tokens");
  main_rows(tokens_.as<int32_t>(), n, pos0, keep);
}

void CudaForward::main_rows(const int32_t* tokens_dev, int n, int pos0, bool keep) {
  const int H = c_.n_embd;
  const float eps = c_.rms_norm_eps;
  check(k::elementwise::Embed(w_->embed.data, w_->embed.wtype, H, tokens_dev, n, x_.as(), stream_), "Embed");
  check(k::norm::RMSNorm(x_.as(), H, w_->layers[0].input_norm, n, H, eps, xn_.as(), H, stream_), "RMSNorm");
  for (int i = 0; i < c_.n_layer; ++i) {
    const DLayer& L = w_->layers[i];
    if (L.kind == LayerKind::FullAttention)
      full_attention(L, xn_.as(), n, pos0, kv_[layer_slot_[i]], branch_.as());
    else
      deltanet(L, xn_.as(), n, lin_[layer_slot_[i]], keep, branch_.as());
    mark("residual add + RMSNorm");
    check(k::norm::AddRMSNorm(x_.as(), branch_.as(), L.post_norm, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
    ffn(L, xn_.as(), n, branch_.as());
    mark("residual add + RMSNorm");
    const float* next = i + 1 < c_.n_layer ? w_->layers[i + 1].input_norm : w_->final_norm;
    check(k::norm::AddRMSNorm(x_.as(), branch_.as(), next, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
  }
}

void CudaForward::mtp(const MtpBatch& b) {
  if (!w_->has_mtp) fail(IMP_ERR_UNSUPPORTED, "the model has no MTP head (no mtp.* tensors)");
  const int T = b.n, H = c_.n_embd;
  if (T <= 0 || b.pos0 < 0 || b.pos0 + T > n_ctx_) fail(IMP_ERR_INTERNAL, "MTP batch out of range");
  if (b.draft_sample && (b.n_logit_rows != 1 || b.logits || b.argmax))
    fail(IMP_ERR_INTERNAL, "a sampled draft step asks for exactly one logit row and no logits or argmax");
  if (b.low_precision_head && b.draft_sample && !lm_head_fp8_) lm_head_fp8_ = cuda::lm_head_fp8(w_, stream_);
  set_device();
  if (mtp_graphed(b)) {
    if (b.draft_sample) finish_draft_sample(*b.draft_sample);
    return;
  }
  int next_logit = 0;
  for (int c0 = 0; c0 < T; c0 += kMaxRows) {
    const int n = std::min(kMaxRows, T - c0);
    check(cudaMemcpyAsync(tokens_.as(), b.tokens + c0, sizeof(int32_t) * n, cudaMemcpyHostToDevice, stream_),
          "copying MTP tokens");
    check(cudaMemcpyAsync(hid_in_.as(), b.hidden + size_t(c0) * H, sizeof(float) * n * H, cudaMemcpyHostToDevice, stream_),
          "copying MTP hidden states");
    mtp_rows(tokens_.as<int32_t>(), n, b.pos0 + c0);
    if (b.hidden_out)
      check(cudaMemcpyAsync(b.hidden_out + size_t(c0) * H, xn_.as(), sizeof(float) * n * H, cudaMemcpyDeviceToHost, stream_),
            "copying h_mtp");
    int end = next_logit;
    while (end < b.n_logit_rows && b.logit_rows[end] < c0 + n) ++end;
    if (b.draft_sample && end > next_logit) {  // the one logit row: its logits stay on the device
      const int32_t row = b.logit_rows[next_logit] - c0;
      check(cudaMemcpyAsync(rows_.as(), &row, sizeof(int32_t), cudaMemcpyHostToDevice, stream_), "copying a logit row");
      lm_head_rows(xn_.as(), rows_.as<int32_t>(), 1, nullptr, b.vocab_limit, b.low_precision_head);
      sample_draft(*b.draft_sample, b.vocab_limit);
    } else if ((b.logits || b.argmax) && end > next_logit) {
      lm_head(xn_.as(), b.logit_rows + next_logit, end - next_logit, c0,
              b.logits ? b.logits + size_t(next_logit) * c_.n_vocab : nullptr, b.vocab_limit, b.low_precision_head,
              b.argmax ? b.argmax + next_logit : nullptr);
    }
    next_logit = end;
  }
  mark(nullptr);
  sync("MTP forward");
  if (b.draft_sample) finish_draft_sample(*b.draft_sample);
}

void CudaForward::mtp_rows(const int32_t* tokens_dev, int n, int pos0) {
  const int H = c_.n_embd;
  const float eps = c_.rms_norm_eps;
  const DLayer& L = w_->mtp_layer;
  mark("mtp: embed, norms, fc");
  // cat = [Norm(embed(t_{p+1})) | Norm(h_p)], then x = fc(cat).
  check(k::elementwise::Embed(w_->embed.data, w_->embed.wtype, H, tokens_dev, n, x_.as(), stream_), "Embed");
  check(k::norm::RMSNorm(x_.as(), H, w_->mtp_norm_embed, n, H, eps, cat_.as(), 2 * H, stream_), "RMSNorm");
  check(k::norm::RMSNorm(hid_in_.as(), H, w_->mtp_norm_hidden, n, H, eps, cat_.as() + H, 2 * H, stream_), "RMSNorm");
  matmul(w_->mtp_fc, cat_.as(), n, x_.as());
  check(k::norm::RMSNorm(x_.as(), H, L.input_norm, n, H, eps, xn_.as(), H, stream_), "RMSNorm");
  full_attention(L, xn_.as(), n, pos0, mtp_kv_, branch_.as());
  check(k::norm::AddRMSNorm(x_.as(), branch_.as(), L.post_norm, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
  ffn(L, xn_.as(), n, branch_.as());
  check(k::norm::AddRMSNorm(x_.as(), branch_.as(), w_->mtp_norm_out, n, H, eps, xn_.as(), stream_), "add + RMSNorm");
}

}  // namespace cuda

std::unique_ptr<ForwardPass> make_cuda_forward(const Model& model, int n_ctx, int device) {
  const int n = cuda_device_count();
  if (n == 0) fail(IMP_ERR_BACKEND, "no CUDA device: the CUDA runtime finds none (driver or GPU missing)");
  if (device < 0 || device >= n) fail(IMP_ERR_INVALID_ARGUMENT, "CUDA device ", device, " does not exist (", n, " present)");
  if (n_ctx <= 0) fail(IMP_ERR_INVALID_ARGUMENT, "n_ctx is ", n_ctx);
  return std::make_unique<cuda::CudaForward>(model, n_ctx, device);
}

}  // namespace imp
