// CUDA graphs for the CUDA backend's small batches: a decode step (main model, T = 1), a verify batch (T = k+1
// rows, keep_row_states) and an MTP step (MtpForward / PrefillMtp) of at most kGraphMaxRows rows are each
// recorded once per batch shape (GraphKey) with stream capture, then replayed with one cudaGraphLaunch instead of
// some hundreds of kernel launches. Private to lib/cuda.
//
// What a replay may not bake in, it reads from memory the host writes before the launch: the position (pos0 +
// *pos0_dev in kernels/rope.cuh and kernels/attention.cuh), the token ids and the logit row indices (StepInputs,
// pinned, copied to the device by the graph's first node) and the MTP's input hidden states (pinned, then
// copied into the forward pass's hid_in_). The outputs (the asked rows' logits, the hidden states) are copied by
// the graph into pinned buffers here and from there to the caller after the stream synchronisation: the caller's
// pointers change from call to call. Every other pointer in a graph (activations, states, caches, weights) is
// allocated at construction and never moves, which is what makes a recorded graph valid for the instance's life.
// A shape's first batch runs eagerly and its second records the graph (StepGraphs::run says why).
//
// Batches of more than kGraphMaxRows rows (prefill, and a k = 16 verify of 17 rows) run eagerly: above 16 rows
// matmuls go to cuBLAS and attention to the prefill kernel, whose launch cost is small against their work.
//
// IMP_CUDA_GRAPHS=0 in the environment when a forward pass is constructed turns graphs off for it (every batch
// runs eagerly, as before graphs), so that benchmarks can compare and a kernel can be debugged on its own.
#pragma once

#include "core/error.h"
#include "engine/forward.h"

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace imp::cuda {

constexpr int kGraphMaxRows = 16;  // rows a graphed batch may have (the GEMV and split-K attention limit)
constexpr int kMaxGraphs = 64;     // batch shapes tracked per forward pass; further ones run eagerly

// False when IMP_CUDA_GRAPHS is set to "0" (or "off", "false", "no"); read by each CudaForward constructor.
bool cuda_graphs_enabled_by_env();

// What makes two batches replay the same graph: everything that changes which kernels run, with which shapes.
struct GraphKey {
  enum class Kind : uint8_t { Main, Mtp, MtpChain };  // MtpChain: rows = steps of a draft chain
  Kind kind = Kind::Main;
  int rows = 0;                     // tokens in the batch, 1..kGraphMaxRows
  bool keep_row_states = false;     // main: the DeltaNet states after every row are kept
  int logit_rows = 0;               // rows whose logits are copied out (0 = no logits)
  bool hidden = false;              // the hidden states are copied out (main: hidden, MTP: hidden_out)
  int vocab_limit = 0;              // MTP: logit columns computed (V = all; 0 when no logits are asked for)
  bool low_precision_head = false;  // MTP: the FP8 copy of the lm_head
  bool argmax = false;              // the logit rows' argmax ids are copied out instead of their logits
  // Sampling on the device (temperature > 0): main, a verify of rows - 1 drafts (0 = a plain sampled step); MTP,
  // a draft drawn from q slot `sample_slot`. The parameters are kernel arguments, so they are part of the key.
  bool sampled = false;
  int sample_slot = 0;
  SampleParams sample;
  bool operator==(const GraphKey& o) const {
    return kind == o.kind && rows == o.rows && keep_row_states == o.keep_row_states && logit_rows == o.logit_rows &&
           hidden == o.hidden && vocab_limit == o.vocab_limit && low_precision_head == o.low_precision_head &&
           argmax == o.argmax && sampled == o.sampled && sample_slot == o.sample_slot && sample == o.sample;
  }
};

// The per-batch inputs a graph's first node copies to the device.
struct StepInputs {
  int32_t pos0 = 0;                      // position of row 0 (kernels add it to their host pos0 of 0)
  int32_t tokens[kGraphMaxRows] = {};
  int32_t logit_rows[kGraphMaxRows] = {};  // row indices into the batch, ascending
  int32_t positions[kGraphMaxRows] = {};   // a draft chain's step positions (pos0 + s)
  int32_t drafts[kGraphMaxRows] = {};      // a sampled verify's drafts
  double uniforms[kGraphMaxRows] = {};     // a sampled batch's draws (a draft step: one)
};

// The graphs of one forward pass and the staging memory they read and write. Not thread-safe (neither is the
// forward pass). Holds no stream: the forward pass passes its own.
class StepGraphs {
 public:
  StepGraphs() = default;
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;
  ~StepGraphs() { release(); }

  // Allocates the staging buffers (about (2H + V) x kGraphMaxRows floats of pinned memory) when enabled; a
  // disabled instance allocates nothing and run() always answers "run it eagerly". Throws imp::Error.
  void init(bool enabled, int n_embd, int n_vocab);
  bool enabled() const { return enabled_; }

  // Pinned host staging: written before run() (inputs), read after it returns true (outputs).
  StepInputs& inputs() { return *in_host_; }
  float* hidden_in() { return hidden_in_; }    // (kGraphMaxRows, H) MTP input hidden states
  float* hidden_out() { return hidden_out_; }  // (kGraphMaxRows, H)
  float* logits_out() { return logits_out_; }  // (kGraphMaxRows, V), row stride V
  // The argmax ids of a batch that asks for ids instead of logits, or a sampled batch's token or verdict: the start
  // of the (then unused) logits staging.
  int32_t* argmax_out() { return reinterpret_cast<int32_t*>(logits_out_); }
  // Enqueues the copy of inputs() to its device twin (the first node of every graph), and the device addresses
  // of the twin's fields, which the graph's kernels read.
  void copy_inputs(cudaStream_t stream) const;
  const int32_t* pos0_dev() const { return reinterpret_cast<const int32_t*>(dev_bytes() + offsetof(StepInputs, pos0)); }
  const int32_t* tokens_dev() const { return reinterpret_cast<const int32_t*>(dev_bytes() + offsetof(StepInputs, tokens)); }
  const int32_t* positions_dev() const {
    return reinterpret_cast<const int32_t*>(dev_bytes() + offsetof(StepInputs, positions));
  }
  const int32_t* logit_rows_dev() const {
    return reinterpret_cast<const int32_t*>(dev_bytes() + offsetof(StepInputs, logit_rows));
  }
  const int32_t* drafts_dev() const { return reinterpret_cast<const int32_t*>(dev_bytes() + offsetof(StepInputs, drafts)); }
  const double* uniforms_dev() const {
    return reinterpret_cast<const double*>(dev_bytes() + offsetof(StepInputs, uniforms));
  }

  // Replays the graph of `key` on `stream` and waits for it. The graph is recorded from record() (which enqueues
  // the batch's work on `stream`: copy_inputs(), the kernels, the copies to the output staging) the second time
  // the key is seen: its first batch runs eagerly, so that one-off shapes (a short prompt) never pay for a
  // recording and first-use initialisation (module loading, the FP8 head) happens outside a capture. Returns
  // false, having run nothing, when the batch is to run eagerly instead: graphs off, a key's first batch,
  // no slot among kMaxGraphs, or recording failed (logged as a warning with the CUDA message, the stream
  // left usable; a key is tried kCaptureAttempts times, since another thread's work on the device can invalidate
  // a capture). Throws imp::Error (IMP_ERR_BACKEND) when a replay fails.
  template <typename Record>
  bool run(const GraphKey& key, cudaStream_t stream, const char* what, Record&& record) {
    if (!enabled_) return false;
    Graph* g = find(key);
    if (!g) {
      add(key);
      return false;
    }
    if (!g->exec && !capture(*g, stream, what, record)) return false;
    replay(*g, stream, what);
    return true;
  }

  size_t recorded() const;  // graphs recorded and instantiated
  int capture_failures() const { return capture_failures_; }

  // Destroys the graphs and frees the staging (the forward pass calls it before destroying its stream).
  void release() noexcept;

 private:
  static constexpr int kCaptureAttempts = 3;
  struct Graph {
    GraphKey key;
    cudaGraphExec_t exec = nullptr;  // null until recorded
    int failures = 0;                // recordings that failed
  };
  Graph* find(const GraphKey& key);
  void add(const GraphKey& key);  // in a free slot, or one of a key never recorded; else not at all

  template <typename Record>
  bool capture(Graph& g, cudaStream_t stream, const char* what, Record& record) {
    if (g.failures >= kCaptureAttempts) return false;
    try {
      begin_capture(stream, what);
    } catch (const Error& e) {
      capture_failed(g, what, e.what());
      return false;
    }
    try {
      record();
    } catch (const Error& e) {
      abandon_capture(stream);
      capture_failed(g, what, e.what());
      return false;
    } catch (...) {
      abandon_capture(stream);
      throw;
    }
    try {
      g.exec = end_capture(stream, what);
    } catch (const Error& e) {
      capture_failed(g, what, e.what());
      return false;
    }
    return true;
  }
  void begin_capture(cudaStream_t stream, const char* what);
  void abandon_capture(cudaStream_t stream) noexcept;  // ends a capture that failed, drops what it recorded
  cudaGraphExec_t end_capture(cudaStream_t stream, const char* what);
  void capture_failed(Graph& g, const char* what, const char* message);
  void replay(const Graph& g, cudaStream_t stream, const char* what);
  const char* dev_bytes() const { return reinterpret_cast<const char*>(in_dev_); }

  bool enabled_ = false;
  std::vector<Graph> graphs_;  // one per key seen, reserved to kMaxGraphs at init: entries never move
  int capture_failures_ = 0;
  StepInputs* in_host_ = nullptr;  // pinned
  StepInputs* in_dev_ = nullptr;
  float* hidden_in_ = nullptr;     // pinned, and the two below: one allocation
  float* hidden_out_ = nullptr;
  float* logits_out_ = nullptr;
  void* pinned_ = nullptr;         // in_host_ .. logits_out_
};

}  // namespace imp::cuda
