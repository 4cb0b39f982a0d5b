// The CPU engine against Hugging Face transformers (tools/fixtures/make_fixtures.py): logits at every prompt
// position within 1e-4 x max|logit|, the 32 greedy tokens identical, and the MTP head against the PyTorch
// reference written from the spec (prompt rows after PrefillMtp and a 3-step draft chain).
#include <imp/imp.h>

#include "api/handles.h"
#include "engine/forward.h"
#include "model/model.h"
#include "support/compare.h"
#include "support/golden.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using imp::test::Golden;
using imp::test::GoldenTensor;

namespace {

constexpr double kTolerance = 1e-4;  // x max |logit|

using imp::test::rel_err;

int argmax(const float* x, int n) { return int(std::max_element(x, x + n) - x); }

class Fixture : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    golden_ = imp::test::load_golden(GetParam());
    ASSERT_EQ(imp_model_load(&model_, golden_.dir.c_str(), nullptr), IMP_OK) << imp_last_error();
    vocab_ = imp_model_n_vocab(model_);
    imp_context_params cp = imp_context_default_params();
    cp.n_ctx = 256;
    ASSERT_EQ(imp_context_create(&ctx_, model_, &cp), IMP_OK) << imp_last_error();
  }
  void TearDown() override {
    imp_context_free(ctx_);
    imp_model_free(model_);
  }
  Golden golden_;
  imp_model* model_ = nullptr;
  imp_context* ctx_ = nullptr;
  int vocab_ = 0;
};

TEST_P(Fixture, PromptLogitsMatchTransformers) {
  const GoldenTensor& want = golden_.tensor("logits");
  const int n = int(golden_.prompt.size());
  ASSERT_EQ(want.rows(), n);
  ASSERT_EQ(want.cols(), vocab_);
  std::vector<float> got(size_t(n) * vocab_, NAN);
  ASSERT_EQ(imp_prefill(ctx_, golden_.prompt.data(), n, IMP_LOGITS_ALL, got.data(), got.size()), IMP_OK) << imp_last_error();
  double worst = 0;
  for (int p = 0; p < n; ++p) {
    double e = rel_err(got.data() + size_t(p) * vocab_, want.row(p), vocab_);
    worst = std::max(worst, e);
    EXPECT_LE(e, kTolerance) << "position " << p;
  }
  RecordProperty("max_rel_err", std::to_string(worst));
  std::printf("[ %s ] prompt logits: max |diff| / max |logit| = %.3g\n", GetParam(), worst);
}

TEST_P(Fixture, GreedyTokensMatchTransformers) {
  const int n = int(golden_.prompt.size());
  std::vector<float> logits(vocab_, NAN);
  ASSERT_EQ(imp_prefill(ctx_, golden_.prompt.data(), n, IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_OK);
  const GoldenTensor& want = golden_.tensor("greedy_logits");
  std::vector<int32_t> out;
  for (size_t i = 0; i < golden_.greedy.size(); ++i) {
    EXPECT_LE(rel_err(logits.data(), want.row(i), vocab_), kTolerance) << "greedy step " << i;
    int tok = argmax(logits.data(), vocab_);
    out.push_back(tok);
    ASSERT_EQ(imp_decode(ctx_, tok, logits.data(), logits.size()), IMP_OK) << imp_last_error();
  }
  EXPECT_EQ(out, golden_.greedy);
}

TEST_P(Fixture, HiddenStatesMatchTransformers) {
  const imp::Model& m = *model_->model;
  const GoldenTensor& want = golden_.tensor("hidden");
  const int n = int(golden_.prompt.size()), H = m.config.n_embd;
  auto f = imp::make_cpu_forward(m, 256, 0);
  std::vector<float> hidden(size_t(n) * H, NAN);
  imp::ForwardBatch b;
  b.tokens = golden_.prompt.data();
  b.n_tokens = n;
  b.hidden = hidden.data();
  f->Forward(b);
  EXPECT_LE(rel_err(hidden.data(), want.data.data(), hidden.size()), kTolerance);
}

// The MTP head: PrefillMtp over the prompt rows (row p fed t_{p+1}, h_p, position p; t_n = greedy[0]) and a
// 3-step chain fed its own h_mtp and argmax drafts.
TEST_P(Fixture, MtpLogitsMatchTheSpecReference) {
  const imp::Model& m = *model_->model;
  ASSERT_TRUE(m.weights.has_mtp) << "fixture has no mtp.* tensors";
  const int n = int(golden_.prompt.size()), H = m.config.n_embd;
  auto f = imp::make_cpu_forward(m, 256, 0);
  std::vector<float> hidden(size_t(n) * H);
  imp::ForwardBatch b;
  b.tokens = golden_.prompt.data();
  b.n_tokens = n;
  b.hidden = hidden.data();
  f->Forward(b);

  std::vector<int32_t> next(golden_.prompt.begin() + 1, golden_.prompt.end());
  next.push_back(golden_.greedy[0]);
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> logits(size_t(n) * vocab_, NAN), h_mtp(size_t(n) * H, NAN);
  f->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, logits.data(), h_mtp.data()));
  const GoldenTensor& want = golden_.tensor("mtp_prompt_logits");
  double worst = 0;
  for (int p = 0; p < n; ++p) worst = std::max(worst, rel_err(logits.data() + size_t(p) * vocab_, want.row(p), vocab_));
  EXPECT_LE(worst, kTolerance);
  std::printf("[ %s ] MTP prompt rows: max rel err %.3g\n", GetParam(), worst);

  // Chain: step 1 is the last prompt row; steps 2 and 3 feed the previous draft and h_mtp.
  const GoldenTensor& chain = golden_.tensor("mtp_chain_logits");
  std::vector<float> h(h_mtp.end() - H, h_mtp.end()), step_logits(logits.end() - vocab_, logits.end());
  EXPECT_LE(rel_err(step_logits.data(), chain.row(0), vocab_), kTolerance) << "chain step 1";
  for (int s = 1; s < 3; ++s) {
    int32_t draft = argmax(step_logits.data(), vocab_), row0 = 0;
    if (!golden_.mtp_chain_tokens.empty()) EXPECT_EQ(draft, golden_.mtp_chain_tokens[s - 1]);
    std::vector<float> h_out(H);
    f->MtpForward(imp::test::mtp_batch(&draft, h.data(), 1, n - 1 + s, &row0, 1, step_logits.data(), h_out.data()));
    h = h_out;
    EXPECT_LE(rel_err(step_logits.data(), chain.row(s), vocab_), kTolerance) << "chain step " << s + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Transformers, Fixture, ::testing::Values("qwen35_dense", "qwen35_moe", "qwen3_next"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace

namespace {

// The bundled demo model (models/imp-demo, trained by tools/train/train.py) against transformers on a held-out
// code prompt (tools/fixtures/make_demo_golden.py): logits at every position and 32 greedy tokens.
TEST(DemoModel, MatchesTransformersOnAHeldOutPrompt) {
  imp::test::Golden g;
  {
    imp::test::Golden tmp = imp::test::load_golden("imp_demo");
    g = std::move(tmp);
  }
  const std::string dir = std::string(IMP_SOURCE_DIR) + "/models/imp-demo";
  imp_model* model = nullptr;
  ASSERT_EQ(imp_model_load(&model, dir.c_str(), nullptr), IMP_OK) << imp_last_error();
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, model, nullptr), IMP_OK);
  const int V = imp_model_n_vocab(model), n = int(g.prompt.size());
  std::vector<float> got(size_t(n) * V, NAN);
  ASSERT_EQ(imp_prefill(ctx, g.prompt.data(), n, IMP_LOGITS_ALL, got.data(), got.size()), IMP_OK);
  const GoldenTensor& want = g.tensor("logits");
  double worst = 0;
  for (int p = 0; p < n; ++p) worst = std::max(worst, rel_err(got.data() + size_t(p) * V, want.row(p), V));
  std::printf("[ imp-demo ] prompt logits: max |diff| / max |logit| = %.3g\n", worst);
  EXPECT_LE(worst, kTolerance);
  std::vector<float> logits(got.end() - V, got.end());
  std::vector<int32_t> out;
  for (size_t i = 0; i < g.greedy.size(); ++i) {
    int32_t t = argmax(logits.data(), V);
    out.push_back(t);
    ASSERT_EQ(imp_decode(ctx, t, logits.data(), logits.size()), IMP_OK);
  }
  EXPECT_EQ(out, g.greedy);
  imp_context_free(ctx);
  imp_model_free(model);
}

}  // namespace
