// The engine behind a context: the main model's forward pass, the MTP head's draft chain and the verify step of
// speculative decoding, the sampler, and the bookkeeping that ties them together.
//
// One speculative cycle, with P tokens fed and `last` the next token (sampled, not yet fed):
//   draft:  MTP rows [mtp_valid, P) as one batch (row p fed t_{p+1}, h_p, position p; row P-1 fed `last`)
//           -> q_1, d_1; then d_j from (d_{j-1}, h_mtp_{j-1}, position P-2+j) for j = 2..k
//   verify: main forward over [last, d_1..d_k] at P..P+k keeping per-row recurrent states; accept the longest
//           valid prefix d_1..d_j (greedy: d_i == argmax; sampling: u < p(d_i)/q(d_i)); the next token comes
//           from the target (argmax, the residual max(p - q, 0), or the bonus row); roll the main state back to
//           P+1+j. The accepted rows' hidden states become the next cycle's pending MTP rows.
#pragma once

#include "engine/forward.h"
#include "engine/sampler.h"

#include <chrono>
#include <memory>
#include <vector>

namespace imp {

struct Model;

constexpr int kMaxDraft = 16;

// How verify returns to the last accepted token. KeepRowStates: the verify forward keeps the recurrent state
// after every row and rollback copies one back (no recomputation). SnapshotReforward: snapshot before verify,
// and after a rejection restore it and run the accepted tokens through the main model again.
enum class RollbackMode { KeepRowStates, SnapshotReforward };

struct EngineStats {
  int64_t drafted[kMaxDraft] = {};   // drafts proposed at depth i+1
  int64_t accepted[kMaxDraft] = {};  // of which accepted
  int64_t emitted = 0;               // tokens emitted by verify (accepted drafts + the target's token)
  int64_t verify_calls = 0;
  int64_t main_forwards = 0;         // main-model forward calls (prefill chunks, decode steps, verifies)
  int64_t mtp_forwards = 0;          // MTP forward calls (prefill batches, draft steps)
  int64_t prefill_tokens = 0;
  double prefill_ms = 0;             // main prefill
  double prefill_mtp_ms = 0;         // PrefillMtp during prefill
  double decode_ms = 0;              // single-token decode steps
  double draft_ms = 0;
  double verify_ms = 0;
};

class Engine {
 public:
  Engine(const Model& model, std::unique_ptr<ForwardPass> forward);

  const Model& model() const { return model_; }
  int n_past() const { return forward_->n_past(); }
  int n_ctx() const { return forward_->n_ctx(); }
  bool has_mtp() const;

  // Appends tokens (one batched forward) and, with an MTP head, runs PrefillMtp over every row whose next token
  // is known. logits: (n_logit_rows, V) for rows n-1 only (last) or all rows. Checks every argument before any
  // state changes (IMP_ERR_TOKEN_OUT_OF_RANGE, IMP_ERR_CONTEXT_FULL, IMP_ERR_INVALID_ARGUMENT).
  void prefill(const int32_t* tokens, int n, bool all_logits, float* logits);

  // k drafts from the MTP head for the token `last` (the next token, not yet fed). probs (k): q_j(d_j), or null.
  void draft(int32_t last, int k, int32_t* drafts, float* probs);

  // Verifies drafts (a prefix of the last draft() is typical; any in-vocabulary ids are accepted) and emits the
  // accepted drafts plus one target token into out (capacity >= n + 1). Returns the number emitted;
  // *n_accepted gets how many drafts were accepted.
  int verify(const int32_t* drafts, int n, int32_t* out, int out_capacity, int* n_accepted);

  // Samples from logits with the context's sampler.
  int32_t sample(const float* logits);

  // One plain decoding step: feeds token and returns the next one from the context's sampler. Greedy asks the
  // backend for the argmax only (on the GPU no logits reach the host).
  int32_t decode(int32_t token);

  void set_sampling(const SamplingParams& p) { sampler_.set_params(p); }
  void set_rollback_mode(RollbackMode m) { rollback_ = m; }
  // Drafts come from ids [0, n) only (0 = the whole vocabulary); see MtpBatch::vocab_limit.
  void set_draft_vocab(int n) { draft_vocab_ = n; }
  // Benchmarks only (imp-bench --random-weights --mtp K): verify accepts every draft whatever the target says, so a cycle
  // of k drafts always costs k draft steps + one verify of k+1 rows and emits k+1 tokens. The output is then not
  // the model's; the cost per k is what it measures. Greedy sampling only.
  void set_forced_acceptance(bool on) { forced_acceptance_ = on; }
  int draft_vocab() const { return draft_vocab_ > 0 && draft_vocab_ < V_ ? draft_vocab_ : V_; }
  // Draft logits from a low-precision (CUDA: FP8 E4M3) copy of the lm_head: cheaper draft steps, the same output
  // (verification decides), maybe fewer accepted drafts. See MtpBatch::low_precision_head. Off by default.
  void set_draft_head_fp8(bool on) { draft_head_fp8_ = on; }
  bool draft_head_fp8() const { return draft_head_fp8_; }
  // Sampling (temperature > 0) on the device where the backend can (ForwardPass::DeviceSampling): drafts, verify
  // and plain decoding then copy ids, not logits. On by default; tests turn it off to compare with the host path.
  void set_device_sampling(bool on) { device_sampling_ = on; }
  const SamplingParams& sampling() const { return sampler_.params(); }
  void reset();
  const EngineStats& stats() const { return stats_; }
  ForwardPass& forward() { return *forward_; }
  int mtp_valid() const { return mtp_valid_; }  // positions whose MTP row is final

 private:
  void check_tokens(const int32_t* tokens, int n, const char* what) const;
  // Records the fed tokens and their hidden rows; settles the tentative MTP row when its token was fed.
  void record_fed(const int32_t* tokens, int n, const float* hidden);
  // Runs the MTP head over pending rows [mtp_valid_, end) (row end-1 may be fed `last_token`).
  // last_argmax: the last row's argmax over the draft vocabulary instead of (or besides) its logits.
  void run_mtp_rows(int end, int32_t last_token, float* last_logits, float* last_hidden, double* ms,
                    int32_t* last_argmax = nullptr, const DraftSample* last_sample = nullptr);
  // Sampling of `rows` rows at a time goes to the device (not greedy, the backend can, not turned off).
  bool sample_on_device(int rows) const;
  SampleParams device_sample_params() const;

  const Model& model_;
  std::unique_ptr<ForwardPass> forward_;
  Sampler sampler_;
  EngineStats stats_;
  int V_, H_;
  RollbackMode rollback_ = RollbackMode::KeepRowStates;
  int draft_vocab_ = 0;
  bool draft_head_fp8_ = false;
  bool forced_acceptance_ = false;
  bool device_sampling_ = true;

  std::vector<int32_t> tokens_;          // every token fed to the main model, by position
  // MTP rows not yet in the MTP KV cache: positions [mtp_valid_, n_past()); their hidden states, by position.
  int mtp_valid_ = 0;
  std::vector<float> pending_hidden_;    // (n_past() - mtp_valid_, H)
  int32_t tentative_token_ = -1;         // row mtp_valid_ was computed with this next token (by draft), or -1

  // The last draft, for verify.
  bool drafted_ = false;
  int32_t draft_last_ = -1;
  std::vector<int32_t> draft_tokens_;
  std::vector<std::vector<float>> draft_dists_;  // q_j (greedy, or kept on the device: empty)
  bool draft_on_device_ = false;                 // the last draft's q_j are in the backend's slots
};

}  // namespace imp
