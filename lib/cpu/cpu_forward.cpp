// The CPU reference backend: the forward pass of a Qwen3.5 / Qwen3-Next hybrid, top to bottom.
//   x = embed(tokens)
//   per layer: x += Mixer(Norm_in(x)) (Gated DeltaNet or gated full attention); x += FFN(Norm_post(x))
//   h = Norm_final(x); logits = lm_head(h) for the rows asked for
// and the MTP head (spec section 3): x = fc([Norm(embed(t_{p+1})) | Norm(h_p)]); one full-attention decoder
// layer with its own KV cache; h_mtp = Norm(x); logits = lm_head(h_mtp).
#include "core/error.h"
#include "cpu/layers.h"
#include "cpu/ops.h"
#include "engine/forward.h"
#include "engine/sampler.h"
#include "model/model.h"

#include <cstring>

namespace imp {

namespace {

using cpu::DeltaNetState;
using cpu::KvCache;

class CpuSnapshot : public StateSnapshot {
 public:
  int n_past = 0;
  std::vector<DeltaNetState> lin;
};

class CpuForward : public ForwardPass {
 public:
  CpuForward(const Model& model, int n_ctx, int n_threads)
      : m_(model), c_(model.config), w_(model.weights), n_ctx_(n_ctx), pool_(n_threads) {
    const size_t kv = size_t(n_ctx) * c_.n_head_kv * c_.head_dim;
    for (int i = 0; i < c_.n_layer; ++i) {
      layer_slot_.push_back(c_.layer_kinds[i] == LayerKind::FullAttention ? int(kv_.size()) : int(lin_.size()));
      if (c_.layer_kinds[i] == LayerKind::FullAttention) {
        kv_.push_back(KvCache{std::vector<float>(kv), std::vector<float>(kv)});
      } else {
        DeltaNetState s;
        s.S.assign(size_t(c_.lin_n_v_heads) * c_.lin_k_dim * c_.lin_v_dim, 0.0f);
        s.conv.assign(size_t(c_.lin_conv_kernel - 1) * c_.lin_conv_dim(), 0.0f);
        lin_.push_back(std::move(s));
      }
    }
    row_states_.resize(lin_.size());
    if (w_.has_mtp) mtp_kv_ = KvCache{std::vector<float>(kv), std::vector<float>(kv)};
  }

  int n_past() const override { return n_past_; }
  int n_ctx() const override { return n_ctx_; }

  void Forward(const ForwardBatch& b) override {
    const int T = b.n_tokens, H = c_.n_embd, pos0 = n_past_;
    if (T <= 0 || pos0 + T > n_ctx_) fail(IMP_ERR_INTERNAL, "Forward called with ", T, " tokens at position ", pos0);
    std::vector<float> x(size_t(T) * H), xn(size_t(T) * H), branch(size_t(T) * H);
    for (int t = 0; t < T; ++t) cpu::embed_row(w_.embed, b.tokens[t], &x[size_t(t) * H]);

    // Row states: index 0 holds the state before the batch, index t+1 the state after row t.
    rows_start_ = b.keep_row_states ? pos0 : -1;
    for (int i = 0; i < c_.n_layer; ++i) {
      const LayerWeights& L = w_.layers[i];
      cpu::rms_norm_rows(pool_, x.data(), L.input_norm.data(), T, H, c_.rms_norm_eps, xn.data());
      if (L.kind == LayerKind::FullAttention) {
        cpu::full_attention(pool_, c_, L.attn, xn.data(), T, pos0, kv_[layer_slot_[i]], branch.data());
      } else {
        DeltaNetState& s = lin_[layer_slot_[i]];
        std::vector<DeltaNetState>* rows = nullptr;
        if (b.keep_row_states) {
          rows = &row_states_[layer_slot_[i]];
          rows->clear();
          rows->push_back(s);  // before the batch
          std::vector<DeltaNetState> after;
          cpu::gated_deltanet(pool_, c_, L.lin, xn.data(), T, s, branch.data(), &after);
          for (auto& st : after) rows->push_back(std::move(st));
        } else {
          cpu::gated_deltanet(pool_, c_, L.lin, xn.data(), T, s, branch.data(), nullptr);
        }
      }
      add(x, branch);
      cpu::rms_norm_rows(pool_, x.data(), L.post_norm.data(), T, H, c_.rms_norm_eps, xn.data());
      cpu::ffn(pool_, c_, L.ffn, xn.data(), T, branch.data());
      add(x, branch);
    }
    cpu::rms_norm_rows(pool_, x.data(), w_.final_norm.data(), T, H, c_.rms_norm_eps, xn.data());
    if (b.hidden) std::memcpy(b.hidden, xn.data(), sizeof(float) * T * H);
    std::vector<float> own_logits(b.argmax && !b.logits ? size_t(b.n_logit_rows) * c_.n_vocab : 0);
    float* logits = b.logits ? b.logits : own_logits.empty() ? nullptr : own_logits.data();
    lm_head(xn.data(), b.logit_rows, b.n_logit_rows, logits);
    if (b.argmax)
      for (int i = 0; i < b.n_logit_rows; ++i) b.argmax[i] = argmax(logits + size_t(i) * c_.n_vocab, c_.n_vocab);
    rows_end_ = b.keep_row_states ? pos0 + T : -1;
    n_past_ = pos0 + T;
  }

  void RollbackTo(int position) override {
    if (rows_start_ < 0 || position < rows_start_ || position > rows_end_)
      fail(IMP_ERR_BAD_STATE, "cannot roll back to position ", position, ": no kept row states cover it");
    const int idx = position - rows_start_;
    for (size_t l = 0; l < lin_.size(); ++l) lin_[l] = row_states_[l][idx];
    n_past_ = position;  // KV rows past it are dead and get overwritten
  }

  void Reset() override {
    n_past_ = 0;
    rows_start_ = rows_end_ = -1;
    for (auto& s : lin_) {
      std::fill(s.S.begin(), s.S.end(), 0.0f);
      std::fill(s.conv.begin(), s.conv.end(), 0.0f);
    }
  }

  std::unique_ptr<StateSnapshot> Snapshot() const override {
    auto s = std::make_unique<CpuSnapshot>();
    s->n_past = n_past_;
    s->lin = lin_;
    return s;
  }

  void Restore(const StateSnapshot& snapshot) override {
    const auto* s = dynamic_cast<const CpuSnapshot*>(&snapshot);
    if (!s || s->lin.size() != lin_.size()) fail(IMP_ERR_INVALID_ARGUMENT, "snapshot is from another model or backend");
    lin_ = s->lin;
    n_past_ = s->n_past;
    rows_start_ = rows_end_ = -1;
  }

  std::vector<std::vector<float>> DumpState(int mtp_rows) const override {
    std::vector<std::vector<float>> out;
    const size_t row = size_t(c_.n_head_kv) * c_.head_dim;
    for (const auto& kv : kv_) {
      out.emplace_back(kv.k.begin(), kv.k.begin() + n_past_ * row);
      out.emplace_back(kv.v.begin(), kv.v.begin() + n_past_ * row);
    }
    for (const auto& s : lin_) {
      out.push_back(s.S);
      out.push_back(s.conv);
    }
    if (w_.has_mtp) {
      out.emplace_back(mtp_kv_.k.begin(), mtp_kv_.k.begin() + mtp_rows * row);
      out.emplace_back(mtp_kv_.v.begin(), mtp_kv_.v.begin() + mtp_rows * row);
    }
    out.push_back({float(n_past_)});
    return out;
  }

  void PrefillMtp(const MtpBatch& b) override { mtp(b); }
  void MtpForward(const MtpBatch& b) override { mtp(b); }

 private:
  static void add(std::vector<float>& x, const std::vector<float>& y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }

  // Logits (n_rows, vocab) of the chosen rows; vocab_limit > 0 keeps only the first vocab_limit ids, packed
  // (n_rows, vocab_limit).
  void lm_head(const float* h, const int32_t* rows, int n_rows, float* logits, int vocab_limit = 0) {
    if (!logits || n_rows <= 0) return;
    const int H = c_.n_embd;
    std::vector<float> sel(size_t(n_rows) * H);
    for (int i = 0; i < n_rows; ++i) std::memcpy(&sel[size_t(i) * H], h + size_t(rows[i]) * H, sizeof(float) * H);
    const Mat head = vocab_limit > 0 && vocab_limit < w_.lm_head.rows ? w_.lm_head.row_block(0, vocab_limit) : w_.lm_head;
    cpu::matmul(pool_, head, sel.data(), n_rows, logits);
  }

  void mtp(const MtpBatch& b) {
    if (!w_.has_mtp) fail(IMP_ERR_UNSUPPORTED, "the model has no MTP head (no mtp.* tensors)");
    const int T = b.n, H = c_.n_embd;
    if (T <= 0 || b.pos0 < 0 || b.pos0 + T > n_ctx_) fail(IMP_ERR_INTERNAL, "MTP batch out of range");
    const MtpWeights& m = w_.mtp;
    std::vector<float> cat(size_t(T) * 2 * H), x(size_t(T) * H), xn(size_t(T) * H), branch(size_t(T) * H);
    std::vector<float> e(H);
    for (int t = 0; t < T; ++t) {
      cpu::embed_row(w_.embed, b.tokens[t], e.data());
      cpu::rms_norm(e.data(), m.norm_embed.data(), H, c_.rms_norm_eps, &cat[size_t(t) * 2 * H]);
      cpu::rms_norm(b.hidden + size_t(t) * H, m.norm_hidden.data(), H, c_.rms_norm_eps, &cat[size_t(t) * 2 * H + H]);
    }
    cpu::matmul(pool_, m.fc, cat.data(), T, x.data());
    const LayerWeights& L = m.layer;
    cpu::rms_norm_rows(pool_, x.data(), L.input_norm.data(), T, H, c_.rms_norm_eps, xn.data());
    cpu::full_attention(pool_, c_, L.attn, xn.data(), T, b.pos0, mtp_kv_, branch.data());
    add(x, branch);
    cpu::rms_norm_rows(pool_, x.data(), L.post_norm.data(), T, H, c_.rms_norm_eps, xn.data());
    cpu::ffn(pool_, c_, L.ffn, xn.data(), T, branch.data());
    add(x, branch);
    cpu::rms_norm_rows(pool_, x.data(), m.norm_out.data(), T, H, c_.rms_norm_eps, xn.data());
    if (b.hidden_out) std::memcpy(b.hidden_out, xn.data(), sizeof(float) * T * H);
    // vocab_limit packs the rows at stride Vl (see lm_head).
    const int Vl = b.vocab_limit > 0 && b.vocab_limit < c_.n_vocab ? b.vocab_limit : c_.n_vocab;
    std::vector<float> own_logits(b.argmax && !b.logits ? size_t(b.n_logit_rows) * Vl : 0);
    float* logits = b.logits ? b.logits : own_logits.empty() ? nullptr : own_logits.data();
    lm_head(xn.data(), b.logit_rows, b.n_logit_rows, logits, b.vocab_limit);
    if (b.argmax)
      for (int i = 0; i < b.n_logit_rows; ++i) b.argmax[i] = argmax(logits + size_t(i) * Vl, Vl);
  }

  const Model& m_;
  const ModelConfig& c_;
  const ModelWeights& w_;
  const int n_ctx_;
  ThreadPool pool_;
  int n_past_ = 0;
  std::vector<int> layer_slot_;  // layer -> index into kv_ or lin_
  std::vector<KvCache> kv_;
  std::vector<DeltaNetState> lin_;
  std::vector<std::vector<DeltaNetState>> row_states_;  // per linear layer: T+1 states of the last kept batch
  int rows_start_ = -1, rows_end_ = -1;
  KvCache mtp_kv_;
};

}  // namespace

std::unique_ptr<ForwardPass> make_cpu_forward(const Model& model, int n_ctx, int n_threads) {
  if (model.random_weights)
    fail(IMP_ERR_UNSUPPORTED, "a random-weight model exists only on the CUDA device; the CPU backend cannot run it");
  return std::make_unique<CpuForward>(model, n_ctx, n_threads);
}

}  // namespace imp
