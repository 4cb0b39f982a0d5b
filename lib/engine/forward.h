// The forward-pass interface every backend implements (CPU reference in lib/cpu/, CUDA in kernels/). One
// instance owns one sequence's state: the full-attention KV caches, the Gated DeltaNet recurrent states and conv
// windows, the MTP head's own KV cache, and the position counter.
//
// Speculative decoding needs three things of it, all here: a batched forward over n tokens that returns the
// logits of chosen rows and the post-final-norm hidden states of every row; a way back to an earlier position
// (snapshot/restore, or the per-row states kept by a verify forward); and the MTP hooks.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace imp {

struct Model;

// Sampling on the device (temperature > 0) for backends that keep the logits there (ForwardPass::DeviceSampling):
// the engine passes the parameters and its random draws (the host Rng's next values, in the order the host code
// would use them), the backend returns ids, and the logits never cross the bus. The results equal the engine's own
// host sampling except where a draw falls within rounding of a boundary (kernels/sampling.cuh).
struct SampleParams {
  float temperature = 1.0f;  // > 0
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  bool operator==(const SampleParams& o) const {
    return temperature == o.temperature && top_k == o.top_k && top_p == o.top_p && min_p == o.min_p;
  }
};

// A draft step's sampling (MtpBatch::draft_sample; the batch's one logit row): its distribution q (over the draft
// vocabulary, zero past it) stays on the device in `slot` for the verify, and one token is drawn from it.
struct DraftSample {
  SampleParams params;
  double uniform = 0;        // the draw
  int slot = 0;              // 0..kDeviceSampleMaxRows-2: draft j's q in slot j
  int32_t* token = nullptr;  // out
  float* prob = nullptr;     // out: q(token), or null
};

// Speculative sampling of a verify batch (ForwardBatch::verify_sample): its rows 0..n_drafts are [last, drafts],
// the target distribution p of row j judges draft j against the q in slot j (Engine::verify's loop), on the device.
struct VerifySample {
  SampleParams params;
  const int32_t* drafts = nullptr;   // (n_drafts)
  int n_drafts = 0;                  // 0: plain sampling of the one row
  const double* uniforms = nullptr;  // (n_drafts + 1)
  int32_t* result = nullptr;         // out (3): {drafts accepted, the next token, uniforms used}
};
constexpr int kDeviceSampleMaxRows = 16;  // verify rows a device-sampled batch may have (n_drafts + 1)

// Tokens appended at positions n_past() .. n_past()+n_tokens-1.
struct ForwardBatch {
  const int32_t* tokens = nullptr;  // (n_tokens), ids already checked against the vocabulary
  int n_tokens = 0;
  const int32_t* logit_rows = nullptr;  // rows (0..n_tokens-1) whose logits are wanted, ascending
  int n_logit_rows = 0;
  float* logits = nullptr;  // (n_logit_rows, n_vocab) or null
  // (n_logit_rows) the id of each asked row's largest logit (ties: the lowest id), or null. Greedy decoding and
  // greedy verification need only these; with logits null a GPU backend computes them on the device and copies
  // n_logit_rows ids instead of n_logit_rows x n_vocab floats.
  int32_t* argmax = nullptr;
  float* hidden = nullptr;  // (n_tokens, H) post-final-norm hidden of every row, or null
  // Keep the recurrent state after every row so that RollbackTo() can return to any position inside this batch
  // without a re-forward (speculative verify).
  bool keep_row_states = false;
  // Sampling on the device (DeviceSampling() backends): rows 0..n_tokens-1 (n_tokens <= kDeviceSampleMaxRows)
  // are sampled as verify_sample says; logits and argmax must then be null.
  const VerifySample* verify_sample = nullptr;
};

// One MTP step per row: row i feeds (tokens[i], hidden[i], position pos0 + i), where hidden[i] is the main
// model's post-final-norm hidden at that position and tokens[i] the token after it. The rows are written into
// the MTP KV cache at their positions (overwriting whatever a rejected draft left there).
struct MtpBatch {
  const int32_t* tokens = nullptr;  // (n)
  const float* hidden = nullptr;    // (n, H)
  int n = 0;
  int pos0 = 0;
  const int32_t* logit_rows = nullptr;  // rows whose logits are wanted
  int n_logit_rows = 0;
  float* logits = nullptr;      // (n_logit_rows, n_vocab) or null; only the first vocab_limit columns are written
  float* hidden_out = nullptr;  // (n, H) h_mtp after mtp.norm, or null
  int32_t* argmax = nullptr;    // (n_logit_rows) each asked row's argmax over [0, vocab_limit), as ForwardBatch::argmax
  // Logits over ids [0, vocab_limit) only: the draft vocabulary (0 = all). Byte-level BPE vocabularies rank ids
  // by merge order, so the low ids are the frequent tokens; a draft head that skips the rare ones costs a
  // fraction of the full lm_head and verification keeps the output exact.
  int vocab_limit = 0;
  // Logits from a low-precision copy of the lm_head: on the CUDA backend FP8 E4M3 with one scale per row (half the
  // bytes of BF16; built on first use, V*H bytes of device memory). Only the draft chain sets it (Engine::
  // set_draft_head_fp8): draft() for its steps, PrefillMtp rows whose logits become drafts. Verification keeps the
  // output exact (greedy: the target's argmax decides; sampling: q is the distribution actually drawn from).
  // The CPU backend ignores it and computes the exact head.
  bool low_precision_head = false;
  // Sampling on the device (DeviceSampling() backends): the one logit row is a draft step, sampled as it says;
  // logits and argmax must then be null.
  const DraftSample* draft_sample = nullptr;
};

// The rest of a draft chain in one call: steps 2..k of Engine::draft, each an MTP step whose token is the previous
// step's draft and whose hidden is the previous step's h_mtp, at positions pos0, pos0 + 1, ... Greedy: each draft
// is the step's argmax. Sampled (`sample` set, DeviceSampling() backends): step s draws its draft from its q with
// uniforms[s] and keeps q in slot first_slot + s for the verify, as MtpBatch::draft_sample does. A backend that
// keeps these on the device runs the chain without returning to the host between steps.
struct MtpChain {
  int32_t token = -1;             // the first step's token (the draft of the step before the chain)
  const float* hidden = nullptr;  // (H) the first step's hidden: the h_mtp of the step before the chain
  int pos0 = 0;                   // the first step's position
  int steps = 0;                  // 1..kGraphMaxRows - 1 on the CUDA backend
  int vocab_limit = 0;            // as MtpBatch
  bool low_precision_head = false;
  const SampleParams* sample = nullptr;  // null: greedy
  const double* uniforms = nullptr;      // (steps) the draws, when sampled
  int first_slot = 1;                    // q slot of the chain's first step, when sampled
  int32_t* drafts = nullptr;             // (steps) out: each step's draft over [0, vocab_limit)
};

// An opaque copy of the sequence state (recurrent states, conv windows, position; the KV caches are append-only
// and are cut back by position instead of copied).
class StateSnapshot {
 public:
  virtual ~StateSnapshot() = default;
};

class ForwardPass {
 public:
  virtual ~ForwardPass() = default;

  virtual int n_past() const = 0;  // tokens in the sequence
  virtual int n_ctx() const = 0;   // positions the state can hold

  // Runs the main model over the batch. Preconditions (the engine checks them first): 0 < n_tokens,
  // n_past() + n_tokens <= n_ctx().
  virtual void Forward(const ForwardBatch& batch) = 0;

  // Returns to n_past = position after a Forward with keep_row_states whose rows covered position-1
  // (position in [start of that batch, its end]). The KV caches are cut by position.
  virtual void RollbackTo(int position) = 0;

  virtual void Reset() = 0;
  virtual std::unique_ptr<StateSnapshot> Snapshot() const = 0;
  virtual void Restore(const StateSnapshot& snapshot) = 0;

  // Every state tensor, for tests that compare two contexts exactly: the recurrent states and conv windows,
  // the KV caches cut at n_past(), and the MTP KV cache cut at mtp_rows positions.
  virtual std::vector<std::vector<float>> DumpState(int mtp_rows) const = 0;

  // MTP hooks. PrefillMtp runs the MTP layer over prompt rows as one batch so its KV cache covers them;
  // MtpForward is the same computation for the draft chain. Both throw IMP_ERR_UNSUPPORTED when the model has
  // no MTP head.
  virtual void PrefillMtp(const MtpBatch& batch) = 0;
  virtual void MtpForward(const MtpBatch& batch) = 0;
  // Runs the chain and returns true, or returns false having done nothing (the engine then runs the steps one
  // MtpForward at a time; the results are the same bit for bit). The CPU backend always declines.
  virtual bool MtpDraftChain(const MtpChain& /*chain*/) { return false; }
  // Whether ForwardBatch::verify_sample and MtpBatch::draft_sample are honoured (the CPU backend samples on the
  // host through the engine instead).
  virtual bool DeviceSampling() const { return false; }
};

// The CPU reference backend over a loaded model, n_ctx positions, n_threads workers (0 = all cores).
std::unique_ptr<ForwardPass> make_cpu_forward(const Model& model, int n_ctx, int n_threads);

// The CUDA backend (lib/cuda/, kernels/) on device ordinal `device`; defined only in builds with the CUDA backend
// (IMP_WITH_CUDA). Throws IMP_ERR_BACKEND (no device, or a CUDA failure), IMP_ERR_INVALID_ARGUMENT (no such
// device), IMP_ERR_UNSUPPORTED (a weight dtype or shape the kernels do not handle).
std::unique_ptr<ForwardPass> make_cuda_forward(const Model& model, int n_ctx, int device);

}  // namespace imp
