#include "engine/engine.h"

#include "core/error.h"
#include "model/model.h"

#include <algorithm>
#include <cstring>

namespace imp {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
}  // namespace

Engine::Engine(const Model& model, std::unique_ptr<ForwardPass> forward)
    : model_(model), forward_(std::move(forward)), V_(model.config.n_vocab), H_(model.config.n_embd) {}

bool Engine::has_mtp() const { return model_.weights.has_mtp; }

void Engine::check_tokens(const int32_t* tokens, int n, const char* what) const {
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= V_)
      fail(IMP_ERR_TOKEN_OUT_OF_RANGE, what, " token ", tokens[i], " at index ", i, " is outside the vocabulary [0, ", V_, ")");
}

void Engine::record_fed(const int32_t* tokens, int n, const float* hidden) {
  const int P = int(tokens_.size());
  // Row P-1 was computed by draft() with a guessed next token; it stands if that token is what was fed.
  if (tentative_token_ >= 0 && mtp_valid_ == P - 1 && n > 0 && tokens[0] == tentative_token_) {
    mtp_valid_ = P;
    pending_hidden_.erase(pending_hidden_.begin(), pending_hidden_.begin() + H_);
  }
  tentative_token_ = -1;
  tokens_.insert(tokens_.end(), tokens, tokens + n);
  if (has_mtp()) pending_hidden_.insert(pending_hidden_.end(), hidden, hidden + size_t(n) * H_);
}

bool Engine::sample_on_device(int rows) const {
  return device_sampling_ && !sampling().greedy() && rows <= kDeviceSampleMaxRows && forward_->DeviceSampling();
}

SampleParams Engine::device_sample_params() const {
  SampleParams p;
  p.temperature = sampling().temperature;
  p.top_k = sampling().top_k;
  p.top_p = sampling().top_p;
  p.min_p = sampling().min_p;
  return p;
}

void Engine::run_mtp_rows(int end, int32_t last_token, float* last_logits, float* last_hidden, double* ms,
                          int32_t* last_argmax, const DraftSample* last_sample) {
  const int first = mtp_valid_, n = end - first, P = int(tokens_.size());
  if (n <= 0) return;
  auto t0 = Clock::now();
  std::vector<int32_t> next(n);
  for (int i = 0; i < n; ++i) next[i] = first + i + 1 < P ? tokens_[first + i + 1] : last_token;
  std::vector<float> h_out(last_hidden ? size_t(n) * H_ : 0);
  int32_t last_row = n - 1;
  MtpBatch b;
  b.tokens = next.data();
  b.hidden = pending_hidden_.data();
  b.n = n;
  b.pos0 = first;
  b.logit_rows = &last_row;
  b.n_logit_rows = last_logits || last_argmax || last_sample ? 1 : 0;
  b.logits = last_logits;
  b.argmax = last_argmax;
  b.draft_sample = last_sample;
  b.hidden_out = last_hidden ? h_out.data() : nullptr;
  b.vocab_limit = draft_vocab();
  b.low_precision_head = draft_head_fp8_;  // only the last row's logits are asked for: a draft
  forward_->PrefillMtp(b);
  ++stats_.mtp_forwards;
  if (last_hidden) std::memcpy(last_hidden, &h_out[size_t(n - 1) * H_], sizeof(float) * H_);
  // Rows whose next token is fed are final. A row fed `last_token` stays pending (tentative) until it is fed.
  int settled = end == P ? n - 1 : n;
  mtp_valid_ = first + settled;
  pending_hidden_.erase(pending_hidden_.begin(), pending_hidden_.begin() + size_t(settled) * H_);
  tentative_token_ = end == P ? last_token : -1;
  *ms += ms_since(t0);
}

void Engine::prefill(const int32_t* tokens, int n, bool all_logits, float* logits) {
  if (n <= 0) fail(IMP_ERR_INVALID_ARGUMENT, "n_tokens is ", n, "; it must be > 0");
  check_tokens(tokens, n, "prompt");
  if (int64_t(n_past()) + n > n_ctx())
    fail(IMP_ERR_CONTEXT_FULL, "prefill of ", n, " tokens at position ", n_past(), " exceeds the context size ", n_ctx());
  auto t0 = Clock::now();
  std::vector<int32_t> rows;
  if (logits) {
    if (all_logits) for (int i = 0; i < n; ++i) rows.push_back(i);
    else rows.push_back(n - 1);
  }
  std::vector<float> hidden(has_mtp() ? size_t(n) * H_ : 0);
  ForwardBatch b;
  b.tokens = tokens;
  b.n_tokens = n;
  b.logit_rows = rows.data();
  b.n_logit_rows = int(rows.size());
  b.logits = logits;
  b.hidden = has_mtp() ? hidden.data() : nullptr;
  forward_->Forward(b);
  ++stats_.main_forwards;
  drafted_ = false;
  record_fed(tokens, n, hidden.data());
  if (n == 1) stats_.decode_ms += ms_since(t0);
  else stats_.prefill_ms += ms_since(t0), stats_.prefill_tokens += n;
  // PrefillMtp: every row whose next token is now known goes into the MTP cache, as one batch.
  if (has_mtp() && n > 1) run_mtp_rows(n_past() - 1, -1, nullptr, nullptr, &stats_.prefill_mtp_ms);
}

void Engine::draft(int32_t last, int k, int32_t* drafts, float* probs) {
  if (!has_mtp()) fail(IMP_ERR_UNSUPPORTED, "the model has no MTP head (no mtp.* tensors): it cannot draft");
  if (k < 1 || k > kMaxDraft) fail(IMP_ERR_INVALID_ARGUMENT, "n_draft is ", k, "; it must be in [1, ", kMaxDraft, "]");
  check_tokens(&last, 1, "last");
  if (n_past() < 1) fail(IMP_ERR_BAD_STATE, "nothing to draft from: prefill a prompt first");
  if (int64_t(n_past()) + k + 1 > n_ctx())
    fail(IMP_ERR_CONTEXT_FULL, "drafting ", k, " tokens at position ", n_past(), " needs ", k + 1,
         " positions for verification; the context holds ", n_ctx());
  auto t0 = Clock::now();
  const int P = n_past();
  draft_tokens_.assign(k, -1);
  // Greedy drafts need the argmax of each step only (found on the device by the CUDA backend); sampled drafts are
  // drawn on the device where the backend can, their q_j kept there for verify (slot j).
  const bool greedy = sampling().greedy();
  const bool on_device = sample_on_device(k + 1);
  draft_dists_.assign(greedy || on_device ? 0 : k, {});
  std::vector<float> logits(greedy || on_device ? 0 : V_), h(H_), h_next(H_);
  int32_t id = -1;
  double unused = 0;
  std::vector<float> q_drawn(k, 0.0f);
  DraftSample ds;  // one per step
  ds.params = device_sample_params();
  ds.token = &id;
  // On the device every step's draw is taken now, in the order the host path takes them, so that a chain can have
  // them all at once.
  std::vector<double> draws(on_device ? k : 0);
  for (double& u : draws) u = sampler_.uniform();
  if (on_device) {
    ds.uniform = draws[0];
    ds.prob = probs ? &q_drawn[0] : nullptr;
  }
  run_mtp_rows(P, last, greedy || on_device ? nullptr : logits.data(), h.data(), &unused, greedy ? &id : nullptr,
               on_device ? &ds : nullptr);  // step 1: row P-1 (and any pending rows before it)
  // Steps 2..k in one call where the backend can chain them on the device (no host round trip per step): greedy,
  // or sampled on the device when no q(draft) is asked for (each would cost a copy).
  bool chained = false;
  if ((greedy || (on_device && !probs)) && k > 1) {
    MtpChain c;
    c.token = id;
    c.hidden = h.data();
    c.pos0 = P;
    c.steps = k - 1;
    c.vocab_limit = draft_vocab();
    c.low_precision_head = draft_head_fp8_;
    if (on_device) {
      c.sample = &ds.params;
      c.uniforms = &draws[1];
      c.first_slot = 1;
    }
    c.drafts = &draft_tokens_[1];
    chained = forward_->MtpDraftChain(c);
    if (chained) stats_.mtp_forwards += k - 1;
  }
  for (int j = 0; j < k; ++j) {
    if (chained && j > 0) {
      if (probs) probs[j] = 1.0f;
      drafts[j] = draft_tokens_[j];
      continue;
    }
    if (j > 0) {
      int32_t row0 = 0;
      MtpBatch b;
      b.tokens = &draft_tokens_[j - 1];
      b.hidden = h.data();
      b.n = 1;
      b.pos0 = P - 1 + j;
      b.logit_rows = &row0;
      b.n_logit_rows = 1;
      b.logits = greedy || on_device ? nullptr : logits.data();
      b.argmax = greedy ? &id : nullptr;
      b.hidden_out = h_next.data();
      b.vocab_limit = draft_vocab();
      b.low_precision_head = draft_head_fp8_;
      if (on_device) {
        ds.uniform = draws[j];
        ds.slot = j;
        ds.prob = probs ? &q_drawn[j] : nullptr;
        b.draft_sample = &ds;
      }
      forward_->MtpForward(b);
      ++stats_.mtp_forwards;
      std::swap(h, h_next);
    }
    const int n_draft_vocab = draft_vocab();  // logits past it are not computed
    if (greedy) {
      draft_tokens_[j] = id;
      if (probs) probs[j] = 1.0f;
    } else if (on_device) {
      draft_tokens_[j] = id;
      if (probs) probs[j] = q_drawn[j];
    } else {
      sampler_.distribution(logits.data(), n_draft_vocab, draft_dists_[j]);
      draft_dists_[j].resize(V_, 0.0f);  // q is zero outside the draft vocabulary
      draft_tokens_[j] = sampler_.draw(draft_dists_[j]);
      if (probs) probs[j] = draft_dists_[j][draft_tokens_[j]];
    }
    drafts[j] = draft_tokens_[j];
  }
  drafted_ = true;
  draft_on_device_ = on_device;
  draft_last_ = last;
  stats_.draft_ms += ms_since(t0);
}

int Engine::verify(const int32_t* drafts, int n, int32_t* out, int out_capacity, int* n_accepted) {
  if (!drafted_) fail(IMP_ERR_BAD_STATE, "verify needs a preceding imp_mtp_draft on this context");
  if (n < 0 || n > int(draft_tokens_.size()))
    fail(IMP_ERR_INVALID_ARGUMENT, "n_drafts is ", n, "; the last draft produced ", draft_tokens_.size());
  check_tokens(drafts, n, "draft");
  if (out_capacity < n + 1) fail(IMP_ERR_BUFFER_TOO_SMALL, "out holds ", out_capacity, " tokens; verify may emit ", n + 1);
  const int P = n_past();
  if (int64_t(P) + n + 1 > n_ctx()) fail(IMP_ERR_CONTEXT_FULL, "verifying ", n, " drafts at position ", P, " exceeds the context size ", n_ctx());
  auto t0 = Clock::now();

  std::vector<int32_t> batch(n + 1), rows(n + 1);
  batch[0] = draft_last_;
  std::copy(drafts, drafts + n, batch.begin() + 1);
  for (int i = 0; i <= n; ++i) rows[i] = i;
  // Greedy verification needs each row's argmax only: the backend finds it (on the device for CUDA) and no
  // logits cross the bus. Sampling needs the target distributions.
  const bool greedy = sampling().greedy();
  // Sampled drafts whose q_j the backend kept: the target distributions and the accept/reject loop run there too.
  const bool on_device = !greedy && draft_on_device_ && sample_on_device(n + 1);
  // Sampled verification needs the q_j of a sampled draft: a draft made greedily (or with its q_j kept on a
  // device that is no longer asked to sample) cannot be verified under sampling.
  if (!greedy && !on_device && draft_dists_.size() < size_t(n))
    fail(IMP_ERR_BAD_STATE, "the drafts were made with other sampling parameters (greedy, or sampled on the device); "
         "draft again after imp_context_set_sampling");
  std::vector<float> logits(greedy || on_device ? 0 : size_t(n + 1) * V_), hidden(size_t(n + 1) * H_);
  std::vector<int32_t> target(n + 1);
  std::vector<double> uniforms(on_device ? n + 1 : 0);
  int32_t result[3] = {-1, -1, -1};
  VerifySample vs;
  if (on_device) {
    sampler_.peek_uniforms(n + 1, uniforms.data());
    vs.params = device_sample_params();
    vs.drafts = drafts;
    vs.n_drafts = n;
    vs.uniforms = uniforms.data();
    vs.result = result;
  }
  ForwardBatch b;
  b.tokens = batch.data();
  b.n_tokens = n + 1;
  b.logit_rows = rows.data();
  b.n_logit_rows = n + 1;
  b.logits = greedy || on_device ? nullptr : logits.data();
  b.argmax = greedy ? target.data() : nullptr;
  b.hidden = hidden.data();
  b.verify_sample = on_device ? &vs : nullptr;
  std::unique_ptr<StateSnapshot> snapshot;
  if (rollback_ == RollbackMode::SnapshotReforward) snapshot = forward_->Snapshot();
  b.keep_row_states = rollback_ == RollbackMode::KeepRowStates;
  forward_->Forward(b);
  ++stats_.main_forwards;

  // Row i's logits are the target for draft i+1.
  int j = 0;
  int32_t next = -1;
  std::vector<float> p;
  if (on_device) {
    j = result[0];
    next = result[1];
    sampler_.skip_uniforms(result[2]);
  }
  for (; !on_device && j < n; ++j) {
    const int32_t d = drafts[j];
    if (greedy) {
      if (d != target[j] && !forced_acceptance_) {
        next = target[j];
        break;
      }
    } else {
      const float* row = &logits[size_t(j) * V_];
      // Accept d with probability min(1, p(d) / q(d)); on rejection draw from normalise(max(p - q, 0)).
      sampler_.distribution(row, V_, p);
      const std::vector<float>& q = draft_dists_[j];
      const double u = sampler_.uniform();
      if (!(p[d] > 0 && u * q[d] < p[d])) {
        std::vector<float> residual(V_);
        double sum = 0;
        for (int v = 0; v < V_; ++v) sum += (residual[v] = std::max(0.0f, p[v] - q[v]));
        next = sampler_.draw(sum > 0 ? residual : p);
        break;
      }
    }
  }
  if (next < 0) next = greedy ? target[n] : sampler_.sample(&logits[size_t(n) * V_], V_);

  if (rollback_ == RollbackMode::KeepRowStates) {
    forward_->RollbackTo(P + 1 + j);
  } else if (j < n) {
    forward_->Restore(*snapshot);
    ForwardBatch again;
    again.tokens = batch.data();
    again.n_tokens = j + 1;
    forward_->Forward(again);
    ++stats_.main_forwards;
  }
  drafted_ = false;
  record_fed(batch.data(), j + 1, hidden.data());
  for (int i = 0; i < n; ++i) stats_.drafted[i]++;
  for (int i = 0; i < j; ++i) stats_.accepted[i]++;
  stats_.emitted += j + 1;
  ++stats_.verify_calls;
  std::copy(drafts, drafts + j, out);
  out[j] = next;
  *n_accepted = j;
  stats_.verify_ms += ms_since(t0);
  return j + 1;
}

int32_t Engine::sample(const float* logits) { return sampler_.sample(logits, V_); }

int32_t Engine::decode(int32_t token) {
  const bool on_device = sample_on_device(1);
  if (!sampling().greedy() && !on_device) {
    std::vector<float> logits(V_);
    prefill(&token, 1, false, logits.data());
    return sample(logits.data());
  }
  check_tokens(&token, 1, "decode");
  if (int64_t(n_past()) + 1 > n_ctx()) fail(IMP_ERR_CONTEXT_FULL, "decoding at position ", n_past(), " exceeds the context size ", n_ctx());
  auto t0 = Clock::now();
  const int32_t row = 0;
  int32_t next = -1;
  std::vector<float> hidden(has_mtp() ? H_ : 0);
  ForwardBatch b;
  b.tokens = &token;
  b.n_tokens = 1;
  b.logit_rows = &row;
  b.n_logit_rows = 1;
  b.hidden = has_mtp() ? hidden.data() : nullptr;
  // Greedy: the argmax. Sampling on the device: one draw, with the uniform the host sampler would have used.
  double u = 0;
  int32_t result[3] = {-1, -1, -1};
  VerifySample vs;
  if (on_device) {
    sampler_.peek_uniforms(1, &u);
    vs.params = device_sample_params();
    vs.uniforms = &u;
    vs.result = result;
    b.verify_sample = &vs;
  } else {
    b.argmax = &next;
  }
  forward_->Forward(b);
  if (on_device) {
    next = result[1];
    sampler_.skip_uniforms(result[2]);
  }
  ++stats_.main_forwards;
  drafted_ = false;
  record_fed(&token, 1, hidden.data());
  stats_.decode_ms += ms_since(t0);
  return next;
}

void Engine::reset() {
  forward_->Reset();
  tokens_.clear();
  mtp_valid_ = 0;
  pending_hidden_.clear();
  tentative_token_ = -1;
  drafted_ = false;
  draft_tokens_.clear();
  draft_dists_.clear();
  stats_ = EngineStats();
  sampler_.set_params(sampler_.params());  // back to the seed's stream
}

}  // namespace imp
