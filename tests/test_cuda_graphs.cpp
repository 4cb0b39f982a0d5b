// CUDA graphs (lib/cuda/cuda_graphs.h) against the eager path of the same backend, bit for bit. Without a CUDA
// device (or in a build without the CUDA backend) every test skips with "no CUDA device: GPU tests skipped".
//   Kernels: q/k norm + RoPE + KV write and split-K attention with the position read from device memory
//   (pos0_dev, the grid sized for n_ctx) equal the host-position launch, at positions on both sides of the split
//   boundaries, for 1, 5 and 16 rows.
//   Models (random tiny models, dense and MoE, and the transformers fixtures, the fused Qwen3-Next layout among
//   them): one forward pass with graphs and one without run the same sequence (a 12-row prompt and the MTP over
//   it, a 20-row eager prefill, 40 decode steps each followed by an MTP step, then MTP draft chains with the
//   full head, a vocab_limit or the FP8 head, verify batches of k+1 = 2..17 rows with keep_row_states and
//   RollbackTo anywhere in them, and small plain batches) to near n_ctx = 420, so the positions cross the
//   128-key split boundaries, some inside a verify batch; every logit, hidden state and state tensor
//   (DumpState) must be equal bit for bit, graphs must have been recorded and none may have failed to record.
//   The greedy draft chain (MtpDraftChain, one graph) equals MtpForward step by step. Two contexts interleaved
//   likewise. The switch and generation through the engine: test_cuda_graphs_engine.cpp.
#include <imp/imp.h>

#include "engine/forward.h"
#include "model/model.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>
#include "support/golden.h"
#include "support/tiny_model.h"


#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"
#include "cuda/cuda_forward.h"

#include "attention.cuh"
#include "rope.cuh"

#include <cuda_runtime_api.h>
#endif

using imp::test::have_gpu;

namespace {

// a and b hold the same bits (NaNs included); the first difference otherwise.
::testing::AssertionResult same_bits(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "first difference at element " << i << " of " << n << ": " << std::hexfloat
                                           << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " and " << b.size();
  return same_bits(a.data(), b.data(), a.size());
}

}  // namespace

#if !defined(IMP_HAVE_CUDA_KERNELS)

TEST(CudaGraphs, NeedTheCudaBackend) { GTEST_SKIP() << "no CUDA device: GPU tests skipped"; }

#else

namespace {

namespace kn = imp::kernels;
using imp::cuda::CudaForward;

/* ---------------------------------------------------------------------------------------------------------- */
/* Kernels: the position from device memory                                                                  */
/* ---------------------------------------------------------------------------------------------------------- */

// A device array filled from a host vector, or with one byte pattern (0xFF and 0x7F make different NaNs, so
// memory that one launch leaves unwritten and the other writes shows).
struct DevArray {
  float* p = nullptr;
  size_t n = 0;
  explicit DevArray(size_t count, int pattern = 0xFF) : n(count) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(n, 1) * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemset(p, pattern, std::max<size_t>(n, 1) * sizeof(float)), cudaSuccess);
  }
  explicit DevArray(const std::vector<float>& h) : DevArray(h.size()) {
    EXPECT_EQ(cudaMemcpy(p, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DevArray() { cudaFree(p); }
  DevArray(const DevArray&) = delete;
  DevArray& operator=(const DevArray&) = delete;
  std::vector<float> down() const {
    std::vector<float> h(n);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

std::vector<float> randn(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

struct AttentionOut {
  std::vector<float> q, k_cache, v_cache, out;
};

// q/k norm + RoPE + KV write, then attention, of T rows at position pos0: from the host value (pos0_dev null)
// or from device memory (host pos0 0, grid sized for n_ctx). The caches start as kc, vc.
AttentionOut run_attention(bool device_position, int T, int pos0, int n_ctx, int split_keys, int max_splits, int pattern,
                           const std::vector<float>& qg, const std::vector<float>& k, const std::vector<float>& v,
                           const std::vector<float>& kc, const std::vector<float>& vc) {
  const int hd = 64, n_rot = 16, nh = 4, nkv = 2;
  std::vector<float> qn(hd, 1.1f), knorm(hd, 0.9f), inv_freq(n_rot / 2);
  for (int i = 0; i < n_rot / 2; ++i) inv_freq[i] = float(1.0 / std::pow(1e7, double(2 * i) / double(n_rot)));
  DevArray qgd(qg), kd(k), vd(v), qnd(qn), knd(knorm), ifd(inv_freq), kcd(kc), vcd(vc);
  DevArray qd(size_t(T) * nh * hd, pattern), out(size_t(T) * nh * hd, pattern);
  DevArray wo(kn::attention::WorkspaceOFloats(nh, hd, max_splits), pattern),
      wml(kn::attention::WorkspaceMlFloats(nh, max_splits), pattern);
  int* pos_dev = nullptr;
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&pos_dev), sizeof(int)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(pos_dev, &pos0, sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);

  kn::rope::QkNormRopeParams rp;
  rp.qg = qgd.p, rp.k = kd.p, rp.v = vd.p, rp.q_norm = qnd.p, rp.k_norm = knd.p, rp.inv_freq = ifd.p;
  rp.q = qd.p, rp.k_cache = kcd.p, rp.v_cache = vcd.p;
  rp.T = T, rp.n_head = nh, rp.n_head_kv = nkv, rp.head_dim = hd, rp.n_rot = n_rot, rp.eps = 1e-6f;
  kn::attention::AttentionParams ap;
  ap.q = qd.p, ap.gate = qgd.p + hd, ap.gate_head_stride = 2 * hd, ap.k_cache = kcd.p, ap.v_cache = vcd.p;
  ap.out = out.p, ap.T = T, ap.n_head = nh, ap.n_head_kv = nkv, ap.head_dim = hd;
  ap.scale = 1.0f / std::sqrt(float(hd));
  ap.work_o = wo.p, ap.work_ml = wml.p, ap.max_splits = max_splits, ap.split_keys = split_keys;
  if (device_position) {
    rp.pos0 = ap.pos0 = 0;
    rp.pos0_dev = ap.pos0_dev = pos_dev;
    ap.n_ctx = n_ctx;
  } else {
    rp.pos0 = ap.pos0 = pos0;
  }
  EXPECT_EQ(kn::rope::QkNormRopeKvWrite(rp, nullptr), cudaSuccess) << kn::last_error_detail();
  EXPECT_EQ(kn::attention::Attention(ap, nullptr), cudaSuccess) << kn::last_error_detail();
  AttentionOut r{qd.down(), kcd.down(), vcd.down(), out.down()};
  cudaFree(pos_dev);
  return r;
}

TEST(CudaGraphKernels, DevicePositionEqualsHostPosition) {
  REQUIRE_GPU();
  const int hd = 64, nh = 4, nkv = 2, n_ctx = 600, split_keys = 128, max_splits = 8;
  std::mt19937 rng(21);
  const std::vector<float> kc = randn(size_t(n_ctx) * nkv * hd, rng), vc = randn(size_t(n_ctx) * nkv * hd, rng);
  for (int T : {1, 5, 16}) {
    const std::vector<float> qg = randn(size_t(T) * nh * 2 * hd, rng), k = randn(size_t(T) * nkv * hd, rng),
                             v = randn(size_t(T) * nkv * hd, rng);
    for (int pos0 : {0, 1, 100, 128 - T, 127, 128, 250, 256 - T + 1, 256, 383, 384, n_ctx - T}) {
      if (pos0 < 0 || pos0 + T > n_ctx) continue;
      SCOPED_TRACE(::testing::Message() << "T " << T << " pos0 " << pos0);
      AttentionOut host = run_attention(false, T, pos0, n_ctx, split_keys, max_splits, 0xFF, qg, k, v, kc, vc);
      AttentionOut dev = run_attention(true, T, pos0, n_ctx, split_keys, max_splits, 0x7F, qg, k, v, kc, vc);
      EXPECT_TRUE(same_bits(host.q, dev.q)) << "q";
      EXPECT_TRUE(same_bits(host.k_cache, dev.k_cache)) << "K cache";
      EXPECT_TRUE(same_bits(host.v_cache, dev.v_cache)) << "V cache";
      EXPECT_TRUE(same_bits(host.out, dev.out)) << "attention output";
    }
  }
  // A device position needs the split-K path and a grid bound.
  kn::attention::AttentionParams ap;
  int dummy = 0;
  ap.pos0_dev = &dummy;
  ap.T = 17, ap.n_head = 2, ap.n_head_kv = 1, ap.head_dim = 64, ap.split_keys = 128;
  EXPECT_EQ(kn::attention::Attention(ap, nullptr), cudaErrorInvalidValue);
  kn::clear_error_detail();
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Whole models: the same sequence with and without graphs                                                   */
/* ---------------------------------------------------------------------------------------------------------- */

using imp::test::TempDir;
using imp::test::TinyModelOptions;

using imp::test::is_fixture;
std::string model_dir(const std::string& name) { return imp::test::cuda_test_model_dir(name); }

constexpr int kCtx = 420;       // split_keys is then 128: boundaries at 128, 256, 384
constexpr int kSplitKeys = 128;
constexpr float kUnwritten = -12345.0f;  // output buffers start with it; a path that skips a value shows

int32_t argmax(const float* x, int n) { return int32_t(std::max_element(x, x + n) - x); }

// One eager and one graphed forward pass fed the same batches; each call compares their outputs bit for bit and
// keeps the eager ones (of the last main batch, of the last MTP batch) for the caller to draw tokens from.
class Twin {
 public:
  Twin(imp::ForwardPass& eager, imp::ForwardPass& graphed, int V, int H) : e_(eager), g_(graphed), V_(V), H_(H) {}

  int n_past() const { return e_.n_past(); }
  const std::vector<float>& logits() const { return logits_; }  // (rows asked, V) of the last Forward
  const std::vector<float>& hidden() const { return hidden_; }  // (rows, H) of the last Forward, if asked
  const float* last_logits() const { return logits_.data() + logits_.size() - V_; }
  std::vector<float> last_hidden() const { return {hidden_.end() - H_, hidden_.end()}; }
  const std::vector<float>& mtp_logits() const { return mtp_logits_; }
  const std::vector<float>& mtp_hidden() const { return mtp_hidden_; }

  void forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& rows, bool want_hidden, bool keep) {
    std::vector<float> le, lg, he, hg;
    run_forward(e_, tokens, rows, want_hidden, keep, le, he);
    run_forward(g_, tokens, rows, want_hidden, keep, lg, hg);
    EXPECT_TRUE(same_bits(le, lg)) << "logits of a " << tokens.size() << "-row batch at " << e_.n_past() - int(tokens.size());
    EXPECT_TRUE(same_bits(he, hg)) << "hidden of a " << tokens.size() << "-row batch at " << e_.n_past() - int(tokens.size());
    EXPECT_EQ(e_.n_past(), g_.n_past());
    logits_ = std::move(le);
    hidden_ = std::move(he);
  }

  void mtp(const std::vector<int32_t>& tokens, const float* hidden_in, int pos0, const std::vector<int32_t>& rows,
           int vocab_limit, bool fp8_head = false) {
    std::vector<float> le, lg, he, hg;
    run_mtp(e_, tokens, hidden_in, pos0, rows, vocab_limit, fp8_head, le, he);
    run_mtp(g_, tokens, hidden_in, pos0, rows, vocab_limit, fp8_head, lg, hg);
    EXPECT_TRUE(same_bits(le, lg)) << "MTP logits, " << tokens.size() << " rows at " << pos0 << ", vocab_limit "
                                   << vocab_limit << (fp8_head ? ", FP8 head" : "");
    EXPECT_TRUE(same_bits(he, hg)) << "h_mtp, " << tokens.size() << " rows at " << pos0;
    mtp_logits_ = std::move(le);
    mtp_hidden_ = std::move(he);
  }

  void rollback(int position) {
    e_.RollbackTo(position);
    g_.RollbackTo(position);
  }

  void check_state(int mtp_rows) {
    const auto se = e_.DumpState(mtp_rows), sg = g_.DumpState(mtp_rows);
    ASSERT_EQ(se.size(), sg.size());
    for (size_t i = 0; i < se.size(); ++i)
      EXPECT_TRUE(same_bits(se[i], sg[i])) << "state tensor " << i << " at n_past " << e_.n_past();
  }

 private:
  void run_forward(imp::ForwardPass& f, const std::vector<int32_t>& tokens, const std::vector<int32_t>& rows,
                   bool want_hidden, bool keep, std::vector<float>& logits, std::vector<float>& hidden) {
    logits.assign(rows.size() * V_, kUnwritten);
    hidden.assign(want_hidden ? tokens.size() * H_ : 0, kUnwritten);
    imp::ForwardBatch b;
    b.tokens = tokens.data();
    b.n_tokens = int(tokens.size());
    b.logit_rows = rows.data();
    b.n_logit_rows = int(rows.size());
    b.logits = rows.empty() ? nullptr : logits.data();
    b.hidden = want_hidden ? hidden.data() : nullptr;
    b.keep_row_states = keep;
    f.Forward(b);
  }
  void run_mtp(imp::ForwardPass& f, const std::vector<int32_t>& tokens, const float* hidden_in, int pos0,
               const std::vector<int32_t>& rows, int vocab_limit, bool fp8_head, std::vector<float>& logits,
               std::vector<float>& hidden) {
    logits.assign(rows.size() * V_, kUnwritten);
    hidden.assign(tokens.size() * H_, kUnwritten);
    imp::MtpBatch b;
    b.tokens = tokens.data();
    b.hidden = hidden_in;
    b.n = int(tokens.size());
    b.pos0 = pos0;
    b.logit_rows = rows.data();
    b.n_logit_rows = int(rows.size());
    b.logits = rows.empty() ? nullptr : logits.data();
    b.hidden_out = hidden.data();
    b.vocab_limit = vocab_limit;
    b.low_precision_head = fp8_head;
    f.MtpForward(b);
  }

  imp::ForwardPass& e_;
  imp::ForwardPass& g_;
  const int V_, H_;
  std::vector<float> logits_, hidden_, mtp_logits_, mtp_hidden_;
};

std::vector<int32_t> random_tokens(int n, int vocab, std::mt19937& rng) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % vocab);
  return t;
}

std::vector<int32_t> iota_rows(int n) {
  std::vector<int32_t> r(n);
  for (int i = 0; i < n; ++i) r[i] = i;
  return r;
}

class CudaGraphModel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device: GPU tests skipped";
    model_ = imp::load_model(model_dir(GetParam()));
    V_ = model_->config.n_vocab;
    H_ = model_->config.n_embd;
    mtp_ = model_->weights.has_mtp;
  }

  // The speculative-decoding cycle, again and again until near kCtx: an MTP draft chain of k steps from the
  // last hidden state, a verify batch of k+1 rows keeping the row states, a rollback to a random position inside
  // it, sometimes a small plain batch (the snapshot re-forward path). k is chosen so that some batches straddle a
  // split boundary.
  void speculate_until_full(Twin& t, std::mt19937& rng, int* mtp_rows) {
    int32_t last = argmax(t.last_logits(), V_);  // the next token to feed
    std::vector<float> h = t.last_hidden();        // the main model's hidden at n_past - 1
    while (t.n_past() + kMaxDraftRows + 4 <= kCtx && !HasFailure()) {
      const int P = t.n_past();
      int k = 1 + int(rng() % 16);
      const int boundary = (P / kSplitKeys + 1) * kSplitKeys;
      if (boundary - P <= 16) k = std::max(1, boundary - P + int(rng() % 2));  // rows on both sides
      std::vector<int32_t> batch{last};
      if (mtp_) {
        std::vector<float> hd = h;
        int32_t tok = last;
        const int vocab_limit = rng() % 3 == 0 ? V_ / 2 : 0;
        const bool fp8_head = rng() % 4 == 0;  // the draft head from the FP8 copy of the lm_head
        for (int j = 0; j < k && !HasFailure(); ++j) {
          t.mtp({tok}, hd.data(), P - 1 + j, {0}, vocab_limit, fp8_head);
          tok = argmax(t.mtp_logits().data(), vocab_limit ? vocab_limit : V_);
          hd = t.mtp_hidden();
          batch.push_back(tok);
        }
        *mtp_rows = std::max(*mtp_rows, P - 1 + k);
      } else {
        for (int j = 0; j < k; ++j) batch.push_back(int32_t(rng() % V_));
      }
      const int T = int(batch.size());
      t.forward(batch, iota_rows(T), /*hidden=*/true, /*keep=*/T <= imp::cuda::kMaxKeepRows);
      if (HasFailure()) return;
      const int back = P + int(rng() % (T + 1));
      t.rollback(back);
      t.check_state(*mtp_rows);
      // The next step starts from the row before the rollback point.
      const int row = back - P - 1;
      if (row >= 0) {
        last = argmax(t.logits().data() + size_t(row) * V_, V_);
        h.assign(t.hidden().begin() + size_t(row) * H_, t.hidden().begin() + size_t(row + 1) * H_);
      } else {  // back to P: nothing of the batch stays; `last` is still the next token, as a decode step
        t.forward({last}, {0}, true, false);
        last = argmax(t.last_logits(), V_);
        h = t.last_hidden();
      }
      if (rng() % 4 == 0 && t.n_past() + 3 + kMaxDraftRows + 4 <= kCtx) {  // as a snapshot re-forward does
        t.forward(random_tokens(1 + int(rng() % 3), V_, rng), {}, false, false);
        t.forward({last}, {0}, true, false);
        last = argmax(t.last_logits(), V_);
        h = t.last_hidden();
      }
    }
  }

  static constexpr int kMaxDraftRows = 17;
  std::unique_ptr<imp::Model> model_;
  int V_ = 0, H_ = 0;
  bool mtp_ = false;
};

TEST_P(CudaGraphModel, SameBitsWithAndWithoutGraphs) {
  CudaForward eager(*model_, kCtx, 0, /*use_graphs=*/false), graphed(*model_, kCtx, 0, /*use_graphs=*/true);
  ASSERT_FALSE(eager.graphs().enabled());
  ASSERT_TRUE(graphed.graphs().enabled());
  Twin t(eager, graphed, V_, H_);
  std::mt19937 rng(1234);
  int mtp_rows = 0;

  // A 12-row prompt (a graphed main batch: every row's logits and hidden), and the MTP over it (11 rows).
  const std::vector<int32_t> prompt = random_tokens(12, V_, rng);
  t.forward(prompt, iota_rows(12), true, false);
  if (mtp_) {
    t.mtp(std::vector<int32_t>(prompt.begin() + 1, prompt.end()), t.hidden().data(), 0, {10}, 0);
    mtp_rows = 11;
  }
  t.check_state(mtp_rows);
  ASSERT_FALSE(HasFailure());

  // 20 rows: eager in both (more than kGraphMaxRows); the states must still agree.
  t.forward(random_tokens(20, V_, rng), {19}, true, false);
  t.check_state(mtp_rows);

  // 40 decode steps, each followed by one MTP step (the first draft of a chain).
  for (int s = 0; s < 40 && !HasFailure(); ++s) {
    t.forward({argmax(t.last_logits(), V_)}, {0}, true, false);
    if (mtp_) {
      t.mtp({argmax(t.last_logits(), V_)}, t.hidden().data(), t.n_past() - 1, {0}, s % 3 == 0 ? V_ / 2 : 0);
      mtp_rows = t.n_past();
    }
    if (s % 10 == 9) t.check_state(mtp_rows);
  }
  ASSERT_FALSE(HasFailure());

  speculate_until_full(t, rng, &mtp_rows);
  t.check_state(mtp_rows);
  EXPECT_GT(t.n_past(), 3 * kSplitKeys) << "the sequence should cross three split boundaries";
  EXPECT_GT(graphed.graphs().recorded(), 0u) << "no graph was recorded";
  EXPECT_EQ(graphed.graphs().capture_failures(), 0) << "some batch shapes fell back to eager execution";
  EXPECT_EQ(eager.graphs().recorded(), 0u);
  std::printf("[ %s ] %zu graphs recorded, n_past %d\n", GetParam(), graphed.graphs().recorded(), t.n_past());
}

// The greedy draft chain (CudaForward::MtpDraftChain: the steps after the first in one graph, each step's argmax
// and h_mtp feeding the next on the device) gives the ids that MtpForward step by step gives, and leaves the same
// MTP KV cache, bit for bit; for 1, 3 and 7 steps, the full head, a vocab_limit and the FP8 head.
TEST_P(CudaGraphModel, DraftChainEqualsStepByStep) {
  if (!mtp_) GTEST_SKIP() << GetParam() << " has no MTP head";
  CudaForward eager(*model_, kCtx, 0, /*use_graphs=*/false), graphed(*model_, kCtx, 0, /*use_graphs=*/true);
  Twin t(eager, graphed, V_, H_);
  std::mt19937 rng(99);
  const std::vector<int32_t> prompt = random_tokens(12, V_, rng);
  t.forward(prompt, iota_rows(12), true, false);
  t.mtp(std::vector<int32_t>(prompt.begin() + 1, prompt.end()), t.hidden().data(), 0, {10}, 0);
  // One MTP step the usual way: its argmax and h_mtp start a chain at the next position.
  auto step = [&](imp::ForwardPass& f, int32_t tok, const float* h, int pos, int vocab_limit, bool fp8, int32_t* id,
                  std::vector<float>& h_out) {
    const int32_t row0 = 0;
    h_out.assign(H_, kUnwritten);
    imp::MtpBatch b;
    b.tokens = &tok;
    b.hidden = h;
    b.n = 1;
    b.pos0 = pos;
    b.logit_rows = &row0;
    b.n_logit_rows = 1;
    b.argmax = id;
    b.hidden_out = h_out.data();
    b.vocab_limit = vocab_limit;
    b.low_precision_head = fp8;
    f.MtpForward(b);
  };
  struct Case { int steps, vocab_limit; bool fp8; };
  for (const Case& k : {Case{1, 0, false}, Case{3, 0, false}, Case{7, V_ / 2, false}, Case{3, 0, true}}) {
    const int P = t.n_past();
    const int32_t last = argmax(t.last_logits(), V_);
    int32_t id0 = -1;
    std::vector<float> h0, h;
    step(eager, last, t.last_hidden().data(), P - 1, k.vocab_limit, k.fp8, &id0, h0);
    std::vector<int32_t> want(k.steps, -1);
    int32_t tok = id0;
    std::vector<float> hin = h0;
    for (int s = 0; s < k.steps; ++s) {
      step(eager, tok, hin.data(), P + s, k.vocab_limit, k.fp8, &want[s], h);
      tok = want[s];
      hin = h;
    }
    int32_t gid0 = -1;
    std::vector<float> gh0;
    step(graphed, last, t.last_hidden().data(), P - 1, k.vocab_limit, k.fp8, &gid0, gh0);
    ASSERT_EQ(id0, gid0);
    std::vector<int32_t> got(k.steps, -1);
    imp::MtpChain c;
    c.token = gid0;
    c.hidden = gh0.data();
    c.pos0 = P;
    c.steps = k.steps;
    c.vocab_limit = k.vocab_limit;
    c.low_precision_head = k.fp8;
    c.drafts = got.data();
    EXPECT_FALSE(graphed.MtpDraftChain(c)) << "a chain shape's first call runs eagerly (the engine steps instead)";
    EXPECT_TRUE(graphed.MtpDraftChain(c)) << "recorded and replayed on the second call";
    EXPECT_TRUE(graphed.MtpDraftChain(c)) << "replayed";
    EXPECT_EQ(want, got) << k.steps << " steps, vocab_limit " << k.vocab_limit << (k.fp8 ? ", FP8 head" : "");
    t.check_state(P + k.steps);
    EXPECT_FALSE(eager.MtpDraftChain(c)) << "graphs off: the engine steps";
    // Move on: the drafts' first token is fed, so the next case starts elsewhere.
    t.forward({id0}, {0}, true, false);
  }
  EXPECT_EQ(graphed.graphs().capture_failures(), 0);
}

// Two contexts of one model, their calls interleaved: each has its own graphs, staging and stream.
TEST_P(CudaGraphModel, TwoContextsInterleaved) {
  CudaForward e1(*model_, kCtx, 0, false), g1(*model_, kCtx, 0, true);
  CudaForward e2(*model_, kCtx, 0, false), g2(*model_, kCtx, 0, true);
  Twin a(e1, g1, V_, H_), b(e2, g2, V_, H_);
  std::mt19937 rng(77);
  a.forward(random_tokens(5, V_, rng), {4}, true, false);
  b.forward(random_tokens(9, V_, rng), iota_rows(9), true, false);
  for (int s = 0; s < 30 && !HasFailure(); ++s) {
    Twin& t = s % 2 ? b : a;
    const int32_t tok = argmax(t.last_logits(), V_);
    if (s % 5 == 4) {  // a verify-shaped batch, rolled back to its middle
      const int P = t.n_past();
      std::vector<int32_t> batch{tok};
      for (int j = 0; j < 4; ++j) batch.push_back(int32_t(rng() % V_));
      t.forward(batch, iota_rows(5), true, true);
      t.rollback(P + 2);
      t.forward({batch[2]}, {0}, true, false);
    } else {
      t.forward({tok}, {0}, true, false);
    }
    if (mtp_) t.mtp({argmax(t.last_logits(), V_)}, t.hidden().data(), t.n_past() - 1, {0}, 0);
  }
  a.check_state(kCtx);
  b.check_state(kCtx);
  EXPECT_EQ(g1.graphs().capture_failures(), 0);
  EXPECT_EQ(g2.graphs().capture_failures(), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaGraphModel,
                         ::testing::Values("tiny_f32", "tiny_bf16", "tiny_moe", "qwen35_dense", "qwen35_moe", "qwen3_next"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace

#endif  // IMP_HAVE_CUDA_KERNELS
