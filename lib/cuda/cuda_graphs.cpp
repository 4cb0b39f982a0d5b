// CUDA graphs for the small batches (cuda_graphs.h): the graph cache and its staging memory, and the CudaForward
// paths that record and replay a main-model batch or an MTP batch. What a graph runs is exactly what the eager
// path runs (main_rows, mtp_rows, lm_head_rows), with the position, tokens and logit rows read from device
// memory, so the two agree bit for bit.
#include "cuda/cuda_graphs.h"

#include "cuda/check.h"
#include "cuda/cuda_forward.h"
#include "core/log.h"

#include "attention.cuh"
#include "gemv.cuh"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

namespace imp::cuda {

static_assert(kGraphMaxRows <= kernels::gemv::kMaxRows, "a graphed batch must stay on the GEMV path (no cuBLAS)");
static_assert(kGraphMaxRows <= kernels::attention::kMaxSplitRows,
              "a graphed batch must stay on the split-K attention path (the one that reads pos0_dev)");
static_assert(kGraphMaxRows <= kLogitChunk, "a graphed batch's logits must fit one lm_head pass");

bool cuda_graphs_enabled_by_env() {
  const char* v = std::getenv("IMP_CUDA_GRAPHS");
  if (!v) return true;
  const std::string s(v);
  return !(s == "0" || s == "off" || s == "OFF" || s == "false" || s == "no");
}

// ---- the graph cache --------------------------------------------------------------------------------------

void StepGraphs::init(bool enabled, int n_embd, int n_vocab) {
  release();
  enabled_ = enabled;
  if (!enabled) return;
  graphs_.reserve(kMaxGraphs);
  const size_t in_bytes = (sizeof(StepInputs) + 255) / 256 * 256;
  const size_t hidden = size_t(kGraphMaxRows) * n_embd, logits = size_t(kGraphMaxRows) * n_vocab;
  check(cudaHostAlloc(&pinned_, in_bytes + sizeof(float) * (2 * hidden + logits), cudaHostAllocPortable),
        "cudaHostAlloc (CUDA graph staging)");
  in_host_ = new (pinned_) StepInputs();
  hidden_in_ = reinterpret_cast<float*>(static_cast<char*>(pinned_) + in_bytes);
  hidden_out_ = hidden_in_ + hidden;
  logits_out_ = hidden_out_ + hidden;
  check(cudaMalloc(reinterpret_cast<void**>(&in_dev_), sizeof(StepInputs)), "cudaMalloc (CUDA graph inputs)");
}

void StepGraphs::copy_inputs(cudaStream_t stream) const {
  check(cudaMemcpyAsync(in_dev_, in_host_, sizeof(StepInputs), cudaMemcpyHostToDevice, stream),
        "copying a graph's inputs");
}

size_t StepGraphs::recorded() const {
  size_t n = 0;
  for (const Graph& g : graphs_) n += g.exec != nullptr;
  return n;
}

StepGraphs::Graph* StepGraphs::find(const GraphKey& key) {
  for (Graph& g : graphs_)
    if (g.key == key) return &g;
  return nullptr;
}

void StepGraphs::add(const GraphKey& key) {
  if (graphs_.size() < size_t(kMaxGraphs)) {
    graphs_.push_back(Graph{key, nullptr, 0});  // within the reserved capacity: no reallocation
    return;
  }
  // Full: a key seen once and never recorded (a one-off prompt length, say) makes room for the new one.
  for (Graph& g : graphs_)
    if (!g.exec && g.failures == 0) {
      g = Graph{key, nullptr, 0};
      return;
    }
}

void StepGraphs::begin_capture(cudaStream_t stream, const char* what) {
  // Thread-local mode: another thread's forward pass (its allocations, its own captures) is not disturbed, while
  // an unsafe call on this thread (a cudaMalloc, a synchronisation) fails the capture instead of going unnoticed.
  const std::string msg = std::string("starting the CUDA graph capture of ") + what;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), msg.c_str());
}

void StepGraphs::abandon_capture(cudaStream_t stream) noexcept {
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream, &graph);  // invalidated captures return an error and no graph
  if (graph) cudaGraphDestroy(graph);
  cudaGetLastError();  // capture errors are not sticky; leave none behind for the next check
}

cudaGraphExec_t StepGraphs::end_capture(cudaStream_t stream, const char* what) {
  cudaGraph_t graph = nullptr;
  const std::string end_msg = std::string("ending the CUDA graph capture of ") + what;
  const cudaError_t e = cudaStreamEndCapture(stream, &graph);
  if (e != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    check(e, end_msg.c_str());
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t ie = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);  // the executable graph is independent of the graph it came from
  if (ie != cudaSuccess) {
    cudaGetLastError();
    check(ie, (std::string("instantiating the CUDA graph of ") + what).c_str());
  }
  return exec;
}

void StepGraphs::capture_failed(Graph& g, const char* what, const char* message) {
  g.exec = nullptr;
  ++g.failures;
  ++capture_failures_;
  imp::log(IMP_LOG_WARN, "CUDA graph of ", what, " (", g.key.rows, " rows) could not be recorded (attempt ", g.failures,
           " of ", kCaptureAttempts, "); the batch runs without a graph: ", message);
}

void StepGraphs::replay(const Graph& g, cudaStream_t stream, const char* what) {
  const std::string msg = std::string("CUDA graph of ") + what;
  check(cudaGraphLaunch(g.exec, stream), msg.c_str());
  check(cudaStreamSynchronize(stream), msg.c_str());
}

void StepGraphs::release() noexcept {
  for (Graph& g : graphs_)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  graphs_.clear();
  if (in_dev_) cudaFree(in_dev_);
  if (pinned_) cudaFreeHost(pinned_);
  in_dev_ = nullptr;
  pinned_ = nullptr;
  in_host_ = nullptr;
  hidden_in_ = hidden_out_ = logits_out_ = nullptr;
  enabled_ = false;
}

// ---- the forward pass's graphed batches -------------------------------------------------------------------

namespace {

// While a graph is being recorded the forward pass's layers take the position from device memory.
class DevicePosition {
 public:
  DevicePosition(const int32_t*& slot, const int32_t* pos0_dev) : slot_(slot) { slot_ = pos0_dev; }
  ~DevicePosition() { slot_ = nullptr; }
  DevicePosition(const DevicePosition&) = delete;
  DevicePosition& operator=(const DevicePosition&) = delete;

 private:
  const int32_t*& slot_;
};

// True when rows are ascending indices into a batch of n rows (what the graph's one lm_head pass assumes).
bool rows_in_batch(const int32_t* rows, int n_rows, int n) {
  for (int i = 0; i < n_rows; ++i)
    if (rows[i] < 0 || rows[i] >= n || (i > 0 && rows[i] <= rows[i - 1])) return false;
  return true;
}

// The sampling parameters of a sampled batch go into its key: they are kernel arguments.
void set_sampling(GraphKey& key, const SampleParams& p, int slot) {
  key.sampled = true;
  key.sample_slot = slot;
  key.sample = p;
}
}  // namespace

bool CudaForward::forward_graphed(const ForwardBatch& b) {
  const int T = b.n_tokens, H = c_.n_embd, V = c_.n_vocab;
  const VerifySample* vs = b.verify_sample;
  // Ids only (greedy), logits only, or a sampled verdict only: a batch asking for two of them runs eagerly.
  if ((b.argmax && b.logits) || (vs && (b.argmax || b.logits))) return false;
  const bool ids = b.argmax != nullptr;
  // A sampled batch's logits are every row's, and they stay on the device.
  const int n_rows = vs ? T : b.logits || ids ? b.n_logit_rows : 0;
  if (!graphs_.enabled() || timer_.on() || T > kGraphMaxRows || n_rows > T ||
      (!vs && !rows_in_batch(b.logit_rows, n_rows, T)))
    return false;
  if (vs && (vs->n_drafts + 1 != T || T > kDeviceSampleMaxRows || !vs->uniforms || !vs->result ||
             (vs->n_drafts && !vs->drafts)))
    return false;  // the eager path reports it
  GraphKey key;
  key.kind = GraphKey::Kind::Main;
  key.rows = T;
  key.keep_row_states = b.keep_row_states;
  key.logit_rows = n_rows;
  key.hidden = b.hidden != nullptr;
  key.argmax = ids;
  if (vs) set_sampling(key, vs->params, 0);

  StepInputs& in = graphs_.inputs();
  in.pos0 = n_past_;
  std::memcpy(in.tokens, b.tokens, sizeof(int32_t) * T);
  if (vs) {
    for (int i = 0; i < T; ++i) in.logit_rows[i] = i;
    std::memcpy(in.uniforms, vs->uniforms, sizeof(double) * T);
    if (vs->n_drafts) std::memcpy(in.drafts, vs->drafts, sizeof(int32_t) * vs->n_drafts);
    ensure_sampling_buffers();  // never inside a capture
  } else if (n_rows) {
    std::memcpy(in.logit_rows, b.logit_rows, sizeof(int32_t) * n_rows);
  }
  const bool ran = graphs_.run(key, stream_, T == 1 ? "a decode step" : "a main-model batch", [&] {
    DevicePosition at(pos0_dev_, graphs_.pos0_dev());
    graphs_.copy_inputs(stream_);
    main_rows(graphs_.tokens_dev(), T, /*pos0=*/0, b.keep_row_states);
    if (key.hidden)
      check(cudaMemcpyAsync(graphs_.hidden_out(), xn_.as(), sizeof(float) * T * H, cudaMemcpyDeviceToHost, stream_),
            "copying hidden states");
    if (vs) {
      lm_head_rows(xn_.as(), graphs_.logit_rows_dev(), T, nullptr, 0, false);
      enqueue_verify_sample(vs->params, T, graphs_.drafts_dev(), graphs_.uniforms_dev(), verdict_dev());
      check(cudaMemcpyAsync(graphs_.argmax_out(), verdict_dev(), sizeof(int32_t) * 3, cudaMemcpyDeviceToHost, stream_),
            "copying the verdict");
    } else if (n_rows) {
      lm_head_rows(xn_.as(), graphs_.logit_rows_dev(), n_rows, ids ? nullptr : graphs_.logits_out(), 0, false,
                   ids ? graphs_.argmax_out() : nullptr);
    }
  });
  if (!ran) return false;
  if (b.hidden) std::memcpy(b.hidden, graphs_.hidden_out(), sizeof(float) * T * H);
  if (vs) std::memcpy(vs->result, graphs_.argmax_out(), sizeof(int32_t) * 3);
  else if (n_rows && ids) std::memcpy(b.argmax, graphs_.argmax_out(), sizeof(int32_t) * n_rows);
  else if (n_rows) std::memcpy(b.logits, graphs_.logits_out(), sizeof(float) * n_rows * V);
  return true;
}

bool CudaForward::mtp_graphed(const MtpBatch& b) {
  const int T = b.n, H = c_.n_embd, V = c_.n_vocab;
  const DraftSample* ds = b.draft_sample;
  if ((b.argmax && b.logits) || (ds && (b.argmax || b.logits || b.n_logit_rows != 1 || !ds->token))) return false;
  const bool ids = b.argmax != nullptr;
  const int n_rows = b.logits || ids || ds ? b.n_logit_rows : 0;
  if (!graphs_.enabled() || timer_.on() || T > kGraphMaxRows || n_rows > T || !rows_in_batch(b.logit_rows, n_rows, T) ||
      !b.hidden)
    return false;
  if (ds && (ds->slot < 0 || ds->slot >= kDeviceSampleMaxRows - 1)) return false;  // the eager path reports it
  // The FP8 head is built (allocated, quantised, synchronised) on first use: let the eager path do that.
  if (n_rows && b.low_precision_head && !lm_head_fp8_) return false;
  const int Vl = b.vocab_limit > 0 && b.vocab_limit < V ? b.vocab_limit : V;
  GraphKey key;
  key.kind = GraphKey::Kind::Mtp;
  key.rows = T;
  key.logit_rows = n_rows;
  key.hidden = b.hidden_out != nullptr;
  key.vocab_limit = n_rows ? Vl : 0;
  key.low_precision_head = n_rows && b.low_precision_head;
  key.argmax = ids;
  if (ds) set_sampling(key, ds->params, ds->slot);

  StepInputs& in = graphs_.inputs();
  in.pos0 = b.pos0;
  std::memcpy(in.tokens, b.tokens, sizeof(int32_t) * T);
  if (n_rows) std::memcpy(in.logit_rows, b.logit_rows, sizeof(int32_t) * n_rows);
  if (ds) {
    in.uniforms[0] = ds->uniform;
    ensure_sampling_buffers();  // never inside a capture
  }
  std::memcpy(graphs_.hidden_in(), b.hidden, sizeof(float) * T * H);
  const bool ran = graphs_.run(key, stream_, "an MTP step", [&] {
    DevicePosition at(pos0_dev_, graphs_.pos0_dev());
    graphs_.copy_inputs(stream_);
    check(cudaMemcpyAsync(hid_in_.as(), graphs_.hidden_in(), sizeof(float) * T * H, cudaMemcpyHostToDevice, stream_),
          "copying MTP hidden states");
    mtp_rows(graphs_.tokens_dev(), T, /*pos0=*/0);
    if (key.hidden)
      check(cudaMemcpyAsync(graphs_.hidden_out(), xn_.as(), sizeof(float) * T * H, cudaMemcpyDeviceToHost, stream_),
            "copying h_mtp");
    if (ds) {  // the draft's logits stay on the device: q into its slot, the token drawn from it
      lm_head_rows(xn_.as(), graphs_.logit_rows_dev(), 1, nullptr, Vl, key.low_precision_head);
      enqueue_draft_sample(ds->params, ds->slot, Vl, graphs_.uniforms_dev(), sampled_token_dev());
      check(cudaMemcpyAsync(graphs_.argmax_out(), sampled_token_dev(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
            "copying a draft");
    } else if (n_rows) {
      lm_head_rows(xn_.as(), graphs_.logit_rows_dev(), n_rows, ids ? nullptr : graphs_.logits_out(), Vl,
                   key.low_precision_head, ids ? graphs_.argmax_out() : nullptr);
    }
  });
  if (!ran) return false;
  if (b.hidden_out) std::memcpy(b.hidden_out, graphs_.hidden_out(), sizeof(float) * T * H);
  if (ds) {
    *ds->token = graphs_.argmax_out()[0];
  } else if (n_rows && ids) {
    std::memcpy(b.argmax, graphs_.argmax_out(), sizeof(int32_t) * n_rows);
  } else if (n_rows) {  // columns [0, Vl) of each row, as the eager path writes them
    if (Vl == V) {
      std::memcpy(b.logits, graphs_.logits_out(), sizeof(float) * n_rows * V);
    } else {
      for (int i = 0; i < n_rows; ++i)
        std::memcpy(b.logits + size_t(i) * V, graphs_.logits_out() + size_t(i) * V, sizeof(float) * Vl);
    }
  }
  return true;
}

// Steps s = 0 .. steps-1: the MTP layer at position pos0 + s on token t_s and hidden h_s, then the draft head, and
// the step's draft into argmax_[s]: its argmax, or (sampled) a token drawn from its q, which stays in q slot
// first_slot + s. t_0 and h_0 come from the host, t_{s+1} = argmax_[s] and h_{s+1} = the step's h_mtp (xn_, copied
// into hid_in_). The same kernels on the same values as the step-by-step path, so the drafts (and the q slots) are
// equal bit for bit; one graph launch and one synchronisation for the chain instead of one per step.
bool CudaForward::MtpDraftChain(const MtpChain& c) {
  const int H = c_.n_embd, V = c_.n_vocab, n = c.steps;
  if (!w_->has_mtp || !graphs_.enabled() || timer_.on() || n < 1 || n >= kGraphMaxRows || !c.hidden || !c.drafts ||
      c.pos0 < 0 || c.pos0 + n > n_ctx_ || c.token < 0 || c.token >= V)
    return false;
  if (c.sample && (!c.uniforms || c.first_slot < 0 || c.first_slot + n > kDeviceSampleMaxRows - 1)) return false;
  if (c.low_precision_head && !lm_head_fp8_) return false;  // built by an eager step first
  set_device();
  const int Vl = c.vocab_limit > 0 && c.vocab_limit < V ? c.vocab_limit : V;
  GraphKey key;
  key.kind = GraphKey::Kind::MtpChain;
  key.rows = n;
  key.logit_rows = 1;
  key.vocab_limit = Vl;
  key.low_precision_head = c.low_precision_head;
  key.argmax = !c.sample;
  if (c.sample) set_sampling(key, *c.sample, c.first_slot);

  StepInputs& in = graphs_.inputs();
  in.pos0 = c.pos0;
  in.tokens[0] = c.token;
  in.logit_rows[0] = 0;
  for (int s = 0; s < n; ++s) in.positions[s] = c.pos0 + s;
  if (c.sample) {
    std::memcpy(in.uniforms, c.uniforms, sizeof(double) * n);
    ensure_sampling_buffers();  // never inside a capture
  }
  std::memcpy(graphs_.hidden_in(), c.hidden, sizeof(float) * H);
  int32_t* ids = argmax_.as<int32_t>();
  const bool ran = graphs_.run(key, stream_, "a draft chain", [&] {
    graphs_.copy_inputs(stream_);
    check(cudaMemcpyAsync(hid_in_.as(), graphs_.hidden_in(), sizeof(float) * H, cudaMemcpyHostToDevice, stream_),
          "copying MTP hidden states");
    for (int s = 0; s < n; ++s) {
      DevicePosition at(pos0_dev_, graphs_.positions_dev() + s);
      mtp_rows(s == 0 ? graphs_.tokens_dev() : ids + (s - 1), 1, /*pos0=*/0);
      if (c.sample) {
        lm_head_rows(xn_.as(), graphs_.logit_rows_dev(), 1, nullptr, Vl, c.low_precision_head);
        enqueue_draft_sample(*c.sample, c.first_slot + s, Vl, graphs_.uniforms_dev() + s, ids + s);
      } else {
        lm_head_rows(xn_.as(), graphs_.logit_rows_dev(), 1, nullptr, Vl, c.low_precision_head, nullptr, ids + s);
      }
      if (s + 1 < n) copy_d2d(hid_in_.as(), xn_.as(), sizeof(float) * H);
    }
    check(cudaMemcpyAsync(graphs_.argmax_out(), ids, sizeof(int32_t) * n, cudaMemcpyDeviceToHost, stream_),
          "copying draft ids");
  });
  if (!ran) return false;
  std::memcpy(c.drafts, graphs_.argmax_out(), sizeof(int32_t) * n);
  return true;
}

}  // namespace imp::cuda
