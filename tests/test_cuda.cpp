// The CUDA backend against the CPU reference, whole models (the kernels, each against a CPU loop, are in
// test_cuda_kernels.cpp). Without a CUDA device (or in a build without the CUDA backend) every test skips with
// "no CUDA device: GPU tests skipped".
//   Models (random tiny models of every weight dtype, dense and MoE, and the transformers fixtures): logits at
//   every prompt position within 2e-2 x max|logit| of the CPU, decode after prefill = one prefill, MTP logits vs
//   the CPU, per-row rollback states = step-by-step states, snapshot/restore, greedy MTP k=1..4 = plain greedy,
//   sampled MTP with sampling on the device = the same with the host's sampling (same seed, token for token),
//   and the fixtures' 32 golden greedy tokens.
#include <imp/imp.h>

#include "api/handles.h"
#include "core/half.h"
#include "core/error.h"
#include "cpu/layers.h"
#include "cpu/ops.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "model/model.h"
#include "support/compare.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>
#include "support/golden.h"
#include "support/tiny_model.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <sys/stat.h>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"

#include <cuda_runtime_api.h>
#endif

using imp::test::have_gpu;
using imp::test::randn;
#if defined(IMP_HAVE_CUDA_KERNELS)
using imp::test::Dev;
#endif

namespace {

constexpr double kModelTol = 2e-2;  // x max |reference|

using imp::test::rel_err;

}  // namespace

/* ---------------------------------------------------------------------------------------------------------- */
/* Whole models                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

namespace {

using imp::test::TempDir;
using imp::test::TinyModelOptions;

using imp::test::is_fixture;
std::string model_dir(const std::string& name) { return imp::test::cuda_test_model_dir(name); }

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % vocab);
  return t;
}

std::vector<float> all_logits(imp::ForwardPass& f, const int32_t* toks, int n, int vocab, std::vector<float>* hidden = nullptr,
                              int H = 0, bool keep = false) {
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> logits(size_t(n) * vocab, NAN);
  if (hidden) hidden->assign(size_t(n) * H, NAN);
  imp::ForwardBatch b;
  b.tokens = toks;
  b.n_tokens = n;
  b.logit_rows = rows.data();
  b.n_logit_rows = n;
  b.logits = logits.data();
  b.hidden = hidden ? hidden->data() : nullptr;
  b.keep_row_states = keep;
  f.Forward(b);
  return logits;
}

class CudaModel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device: GPU tests skipped";
#if defined(IMP_HAVE_CUDA_KERNELS)
    const std::string dir = model_dir(GetParam());
    struct stat st;
    ASSERT_EQ(stat(dir.c_str(), &st), 0) << "fixture " << GetParam() << " is missing (" << dir
                                         << "): tools/fixtures/make_fixtures.py writes it";
    model_ = imp::load_model(dir);
    V_ = model_->config.n_vocab;
    H_ = model_->config.n_embd;
    if (is_fixture(GetParam())) {
      golden_ = imp::test::load_golden(GetParam());
      prompt_ = golden_.prompt;
    } else {
      prompt_ = random_tokens(40, V_, 17);  // > 16 rows: the cuBLAS path and the one-split attention
    }
#endif
  }
  std::unique_ptr<imp::ForwardPass> cpu(int n_ctx = 256) { return imp::make_cpu_forward(*model_, n_ctx, 0); }
  std::unique_ptr<imp::ForwardPass> gpu(int n_ctx = 256) {
#if defined(IMP_HAVE_CUDA_KERNELS)
    return imp::make_cuda_forward(*model_, n_ctx, 0);
#else
    return nullptr;
#endif
  }
  std::unique_ptr<imp::Model> model_;
  imp::test::Golden golden_;
  std::vector<int32_t> prompt_;
  int V_ = 0, H_ = 0;
};

TEST_P(CudaModel, PromptLogitsMatchCpu) {
  const int n = int(prompt_.size());
  auto c = cpu();
  auto g = gpu();
  std::vector<float> ch, gh;
  std::vector<float> want = all_logits(*c, prompt_.data(), n, V_, &ch, H_);
  std::vector<float> got = all_logits(*g, prompt_.data(), n, V_, &gh, H_);
  double worst = 0;
  for (int p = 0; p < n; ++p) {
    const double e = rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_);
    worst = std::max(worst, e);
    EXPECT_LE(e, kModelTol) << "position " << p;
  }
  EXPECT_LE(rel_err(gh.data(), ch.data(), ch.size()), kModelTol) << "hidden states";
  std::printf("[ %s ] GPU vs CPU prompt logits: max rel err %.3g\n", GetParam(), worst);
  if (is_fixture(GetParam())) {
    const imp::test::GoldenTensor& ref = golden_.tensor("logits");
    double wt = 0;
    for (int p = 0; p < n; ++p) wt = std::max(wt, rel_err(&got[size_t(p) * V_], ref.row(p), V_));
    EXPECT_LE(wt, kModelTol) << "GPU vs transformers";
  }
}

TEST_P(CudaModel, DecodeAfterPrefillEqualsOnePrefill) {
  const int n = int(prompt_.size()), half = n / 2;
  auto whole = gpu();
  std::vector<float> want = all_logits(*whole, prompt_.data(), n, V_);
  auto inc = gpu();
  std::vector<float> got = all_logits(*inc, prompt_.data(), half, V_);
  got.resize(size_t(n) * V_);
  for (int p = half; p < n; ++p) {
    std::vector<float> row = all_logits(*inc, &prompt_[p], 1, V_);
    std::copy(row.begin(), row.end(), got.begin() + size_t(p) * V_);
  }
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_), kModelTol) << "position " << p;
  EXPECT_EQ(inc->n_past(), n);
}

TEST_P(CudaModel, MtpMatchesCpu) {
  if (!model_->weights.has_mtp) GTEST_SKIP() << "no MTP head";
  const int n = int(prompt_.size());
  auto c = cpu();
  auto g = gpu();
  std::vector<float> hidden;
  all_logits(*c, prompt_.data(), n, V_, &hidden, H_);
  all_logits(*g, prompt_.data(), n, V_);
  std::vector<int32_t> next(prompt_.begin() + 1, prompt_.end());
  next.push_back(prompt_[0]);
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> lc(size_t(n) * V_, NAN), lg(size_t(n) * V_, NAN), hc(size_t(n) * H_, NAN), hg(size_t(n) * H_, NAN);
  c->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, lc.data(), hc.data()));
  g->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, lg.data(), hg.data()));
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&lg[size_t(p) * V_], &lc[size_t(p) * V_], V_), kModelTol) << "MTP row " << p;
  // Two chain steps fed the CPU's h_mtp and the same draft token.
  std::vector<float> h(hc.end() - H_, hc.end());
  for (int s = 1; s <= 2; ++s) {
    int32_t tok = int32_t(std::max_element(lc.end() - V_, lc.end()) - (lc.end() - V_)), row0 = 0;
    std::vector<float> c_log(V_), g_log(V_, NAN), c_h(H_), g_h(H_, NAN);
    c->MtpForward(imp::test::mtp_batch(&tok, h.data(), 1, n - 1 + s, &row0, 1, c_log.data(), c_h.data()));
    g->MtpForward(imp::test::mtp_batch(&tok, h.data(), 1, n - 1 + s, &row0, 1, g_log.data(), g_h.data()));
    EXPECT_LE(rel_err(g_log.data(), c_log.data(), V_), kModelTol) << "chain step " << s;
    EXPECT_LE(rel_err(g_h.data(), c_h.data(), H_), kModelTol) << "chain step " << s;
    h = c_h;
    std::copy(c_log.begin(), c_log.end(), lc.end() - V_);
  }
  // The MTP KV cache agrees too.
  auto dc = c->DumpState(n + 2), dg = g->DumpState(n + 2);
  ASSERT_EQ(dc.size(), dg.size());
  for (size_t i = 0; i < dc.size(); ++i) {
    ASSERT_EQ(dc[i].size(), dg[i].size()) << "state tensor " << i;
    EXPECT_LE(rel_err(dg[i].data(), dc[i].data(), dc[i].size()), kModelTol) << "state tensor " << i;
  }
}

// keep_row_states + RollbackTo(p) leaves the state a step-by-step run reaches at p; Snapshot/Restore is exact.
TEST_P(CudaModel, RollbackRowStatesEqualStepByStep) {
  const int n0 = std::min<int>(int(prompt_.size()), 12), extra = 5;
  std::vector<int32_t> toks(prompt_.begin(), prompt_.begin() + n0);
  std::vector<int32_t> more = random_tokens(extra, V_, 99);
  auto step = gpu();
  all_logits(*step, toks.data(), n0, V_);
  std::vector<std::vector<std::vector<float>>> want{step->DumpState(0)};
  for (int i = 0; i < extra; ++i) {
    all_logits(*step, &more[i], 1, V_);
    want.push_back(step->DumpState(0));
  }
  auto g = gpu();
  all_logits(*g, toks.data(), n0, V_);
  auto snap = g->Snapshot();
  auto before = g->DumpState(0);
  all_logits(*g, more.data(), extra, V_, nullptr, 0, /*keep=*/true);
  for (int i = extra; i >= 0; --i) {
    g->RollbackTo(n0 + i);
    ASSERT_EQ(g->n_past(), n0 + i);
    auto got = g->DumpState(0);
    ASSERT_EQ(got.size(), want[i].size());
    for (size_t s = 0; s < got.size(); ++s) {
      ASSERT_EQ(got[s].size(), want[i][s].size());
      EXPECT_LE(rel_err(got[s].data(), want[i][s].data(), got[s].size()), kModelTol) << "row " << i << " tensor " << s;
    }
  }
  all_logits(*g, more.data(), 3, V_);
  g->Restore(*snap);
  auto after = g->DumpState(0);
  ASSERT_EQ(after.size(), before.size());
  for (size_t s = 0; s < after.size(); ++s) EXPECT_EQ(after[s], before[s]) << "tensor " << s;
  EXPECT_THROW(g->RollbackTo(n0 + 1), imp::Error);  // Restore drops the kept rows
}

// Through the C ABI with the CUDA backend: greedy MTP decoding (k = 1..4) emits exactly plain greedy decoding, and
// the fixtures' golden greedy tokens.
// Speculative sampling at temperature > 0 with the distributions, draws and accept/reject loop on the device
// (Engine::set_device_sampling, kernels/sampling.cuh) emits what the engine's host sampling emits from the same
// seed, token for token, drafts, verifies and plain sampled steps alike (the draws are the same uniforms; the
// distributions agree to rounding, so only a draw within ~1e-7 of a boundary could differ).
TEST_P(CudaModel, SampledMtpSameOnDeviceAsOnHost) {
  if (!model_->weights.has_mtp) GTEST_SKIP() << "no MTP head";
  struct Case { float temperature; int top_k; float top_p; float min_p; int k; };
  for (const Case& c : {Case{0.8f, 0, 1.0f, 0.0f, 3}, Case{1.2f, 20, 0.9f, 0.0f, 2}, Case{1.0f, 0, 1.0f, 0.05f, 4}}) {
    auto run = [&](bool on_device, std::vector<float>* q_out) {
      imp::Engine e(*model_, gpu(256));
      imp::SamplingParams sp;
      sp.temperature = c.temperature;
      sp.top_k = c.top_k;
      sp.top_p = c.top_p;
      sp.min_p = c.min_p;
      sp.seed = 7;
      e.set_sampling(sp);
      e.set_device_sampling(on_device);
      std::vector<float> logits(V_);
      e.prefill(prompt_.data(), int(prompt_.size()), false, logits.data());
      std::vector<int32_t> out{e.sample(logits.data())};
      for (int cycle = 0; out.size() < 64 && e.n_past() + c.k + 2 < 256; ++cycle) {
        if (cycle % 4 == 3) {  // a plain sampled step now and then
          out.push_back(e.decode(out.back()));
          continue;
        }
        int32_t d[8], toks[9];
        float q[8];
        int acc = 0;
        e.draft(out.back(), c.k, d, q);
        q_out->insert(q_out->end(), q, q + c.k);
        const int m = e.verify(d, c.k, toks, c.k + 1, &acc);
        out.insert(out.end(), toks, toks + m);
      }
      return out;
    };
    std::vector<float> q_host, q_dev;
    const std::vector<int32_t> host = run(false, &q_host), dev = run(true, &q_dev);
    EXPECT_EQ(host, dev) << "T " << c.temperature << " top_k " << c.top_k << " top_p " << c.top_p << " min_p " << c.min_p;
    ASSERT_EQ(q_host.size(), q_dev.size());
    for (size_t i = 0; i < q_host.size(); ++i) EXPECT_NEAR(q_host[i], q_dev[i], 1e-5) << "q of draft " << i;
  }
}

TEST_P(CudaModel, GreedyMtpParityAndGoldenTokens) {
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_CUDA;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, model_dir(GetParam()).c_str(), &mp), IMP_OK) << imp_last_error();
  EXPECT_EQ(m->backend, IMP_BACKEND_CUDA);
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 256;
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, m, &cp), IMP_OK) << imp_last_error();
  const int n_gen = is_fixture(GetParam()) ? int(golden_.greedy.size()) : 24;
  auto generate = [&](int k) { return imp::test::generate_ids(ctx, prompt_, n_gen, k); };
  const std::vector<imp_token> plain = generate(0);
  if (is_fixture(GetParam())) EXPECT_EQ(plain, golden_.greedy) << "GPU greedy vs transformers";
  if (model_->weights.has_mtp)
    for (int k = 1; k <= 4; ++k) EXPECT_EQ(generate(k), plain) << "n_draft " << k;
  imp_context_free(ctx);
  imp_model_free(m);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaModel,
                         ::testing::Values("tiny_f32", "tiny_bf16", "tiny_f16", "tiny_moe", "qwen35_dense", "qwen35_moe",
                                           "qwen3_next"),
                         [](const auto& info) { return std::string(info.param); });

// Backend selection through the C ABI.
TEST(CudaBackend, Selection) {
  TempDir dir;
  imp::test::write_tiny_model(dir.path(), TinyModelOptions{});
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_AUTO;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, dir.path().c_str(), &mp), IMP_OK) << imp_last_error();
  EXPECT_EQ(m->backend, have_gpu() ? IMP_BACKEND_CUDA : IMP_BACKEND_CPU);
  imp_model_free(m);
  mp.backend = IMP_BACKEND_CUDA;
  const imp_status s = imp_model_load(&m, dir.path().c_str(), &mp);
  if (have_gpu()) {
    EXPECT_EQ(s, IMP_OK) << imp_last_error();
    imp_model_free(m);
  } else {
#if defined(IMP_HAVE_CUDA_KERNELS)
    EXPECT_EQ(s, IMP_ERR_BACKEND);
#else
    EXPECT_EQ(s, IMP_ERR_UNSUPPORTED);
#endif
    EXPECT_EQ(m, nullptr);
  }
}

}  // namespace
