// MTP speculative decoding on the CPU: strict greedy parity with plain decoding, exact rollback, the C ABI's
// step-by-step loop against imp_generate, and the bad-input paths. Lossless sampling has its own file.
#include <imp/imp.h>

#include "api/handles.h"
#include "support/golden.h"
#include "support/tiny_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using imp::test::TempDir;
using imp::test::TinyModelOptions;

namespace {

// The models every parity test runs on: two random tiny models and the transformers fixtures.
struct Models {
  TempDir dense, moe;
  Models() {
    TinyModelOptions o;
    o.dtype = "BF16";
    imp::test::write_tiny_model(dense.path(), o);
    o.moe = true;
    o.seed = 5;
    imp::test::write_tiny_model(moe.path(), o);
  }
  std::string path(const std::string& name) const {
    if (name == "tiny_dense") return dense.path();
    if (name == "tiny_moe") return moe.path();
    return imp::test::fixtures_dir() + "/" + name;
  }
};
const Models& models() {
  static Models m;
  return m;
}

struct Handle {
  imp_model* model = nullptr;
  imp_context* ctx = nullptr;
  explicit Handle(const std::string& dir, int n_ctx = 512) {
    EXPECT_EQ(imp_model_load(&model, dir.c_str(), nullptr), IMP_OK) << imp_last_error();
    imp_context_params cp = imp_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    EXPECT_EQ(imp_context_create(&ctx, model, &cp), IMP_OK) << imp_last_error();
  }
  ~Handle() {
    imp_context_free(ctx);
    imp_model_free(model);
  }
  int vocab() const { return imp_model_n_vocab(model); }
};

std::vector<imp_token> prompt_for(int vocab, int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<imp_token> p(n);
  for (auto& t : p) t = imp_token(rng() % vocab);
  return p;
}

std::vector<imp_token> generate(imp_context* ctx, const std::vector<imp_token>& prompt, int n_draft, int max_tokens) {
  imp_generate_params gp = imp_generate_default_params();
  gp.max_tokens = max_tokens;
  gp.n_draft = n_draft;
  gp.eos_token = -2;
  std::vector<imp_token> out(max_tokens, -7);
  size_t n = 0;
  imp_stop_reason why;
  EXPECT_EQ(imp_generate(ctx, prompt.data(), int32_t(prompt.size()), &gp, nullptr, nullptr, out.data(), out.size(), &n, &why), IMP_OK)
      << imp_last_error();
  EXPECT_EQ(n, size_t(max_tokens));
  EXPECT_EQ(why, IMP_STOP_MAX_TOKENS);
  return out;
}

// The step-by-step loop of imp.h, with the prompt prefilled in `chunks` pieces.
std::vector<imp_token> by_hand(imp_context* ctx, int vocab, const std::vector<imp_token>& prompt, int k, int max_tokens, int chunks) {
  std::vector<float> logits(vocab);
  const int n = int(prompt.size());
  for (int c = 0; c < chunks; ++c) {
    int b = n * c / chunks, e = n * (c + 1) / chunks;
    EXPECT_EQ(imp_prefill(ctx, prompt.data() + b, e - b, IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_OK) << imp_last_error();
  }
  imp_token last;
  EXPECT_EQ(imp_sample(ctx, logits.data(), &last), IMP_OK);
  std::vector<imp_token> out{last}, drafts(k), got(k + 1);
  while (int(out.size()) < max_tokens) {
    int32_t n_out = 0, n_acc = 0;
    EXPECT_EQ(imp_mtp_draft(ctx, last, k, drafts.data(), nullptr), IMP_OK) << imp_last_error();
    EXPECT_EQ(imp_mtp_verify(ctx, drafts.data(), k, got.data(), k + 1, &n_out, &n_acc), IMP_OK) << imp_last_error();
    EXPECT_EQ(n_out, n_acc + 1);
    out.insert(out.end(), got.begin(), got.begin() + n_out);
    last = got[n_out - 1];
  }
  out.resize(max_tokens);
  return out;
}

class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, GreedyWithMtpEqualsGreedyWithout) {
  Handle h(models().path(GetParam()));
  auto prompt = prompt_for(h.vocab(), 24, 3);
  const int n_tokens = 64;
  std::vector<imp_token> plain = generate(h.ctx, prompt, 0, n_tokens);
  for (int k : {1, 2, 3, 4, 8}) {
    ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
    EXPECT_EQ(generate(h.ctx, prompt, k, n_tokens), plain) << "k = " << k;
    for (int chunks : {1, 3}) {
      ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
      EXPECT_EQ(by_hand(h.ctx, h.vocab(), prompt, k, n_tokens, chunks), plain) << "by hand, k = " << k << ", chunks " << chunks;
    }
  }
  imp_stats st;
  st.size = sizeof st;
  ASSERT_EQ(imp_context_get_stats(h.ctx, &st), IMP_OK);
  EXPECT_GT(st.n_verify, 0);
}

// Drafts that are the true continuation: every one is accepted and the bonus token follows.
TEST_P(Parity, PerfectDraftsAreAllAcceptedWithTheBonusToken) {
  Handle h(models().path(GetParam()));
  auto prompt = prompt_for(h.vocab(), 16, 4);
  std::vector<imp_token> plain = generate(h.ctx, prompt, 0, 12);
  ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
  std::vector<float> logits(h.vocab());
  ASSERT_EQ(imp_prefill(h.ctx, prompt.data(), int32_t(prompt.size()), IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_OK);
  std::vector<imp_token> drafts(5), out(6);
  ASSERT_EQ(imp_mtp_draft(h.ctx, plain[0], 5, drafts.data(), nullptr), IMP_OK);
  int32_t n_out = 0, n_acc = 0;
  ASSERT_EQ(imp_mtp_verify(h.ctx, plain.data() + 1, 5, out.data(), 6, &n_out, &n_acc), IMP_OK) << imp_last_error();
  EXPECT_EQ(n_acc, 5);
  EXPECT_EQ(std::vector<imp_token>(out.begin(), out.end()), std::vector<imp_token>(plain.begin() + 1, plain.begin() + 7));
}

// After a verify that accepts j of k drafts, the whole state equals decoding the accepted tokens one at a time.
TEST_P(Parity, RollbackEqualsStepByStepDecoding) {
  Handle spec(models().path(GetParam())), ref(models().path(GetParam()));
  auto prompt = prompt_for(spec.vocab(), 20, 5);
  std::vector<imp_token> plain = generate(ref.ctx, prompt, 0, 10);
  const int k = 6;
  for (int j = 0; j < k; ++j) {
    ASSERT_EQ(imp_context_reset(spec.ctx), IMP_OK);
    ASSERT_EQ(imp_context_reset(ref.ctx), IMP_OK);
    std::vector<float> logits(spec.vocab());
    ASSERT_EQ(imp_prefill(spec.ctx, prompt.data(), int32_t(prompt.size()), IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_OK);
    std::vector<imp_token> drafts(k), out(k + 1);
    ASSERT_EQ(imp_mtp_draft(spec.ctx, plain[0], k, drafts.data(), nullptr), IMP_OK);
    // The true continuation for j drafts, then a wrong token: exactly j are accepted.
    std::vector<imp_token> mine(plain.begin() + 1, plain.begin() + 1 + k);
    mine[j] = (plain[1 + j] + 1) % spec.vocab();
    int32_t n_out = 0, n_acc = 0;
    ASSERT_EQ(imp_mtp_verify(spec.ctx, mine.data(), k, out.data(), k + 1, &n_out, &n_acc), IMP_OK);
    ASSERT_EQ(n_acc, j);
    EXPECT_EQ(out[j], plain[1 + j]);

    ASSERT_EQ(imp_prefill(ref.ctx, prompt.data(), int32_t(prompt.size()), IMP_LOGITS_LAST, logits.data(), logits.size()), IMP_OK);
    for (int i = 0; i <= j; ++i) ASSERT_EQ(imp_decode(ref.ctx, plain[i], nullptr, 0), IMP_OK);
    ASSERT_EQ(imp_context_n_past(spec.ctx), imp_context_n_past(ref.ctx));
    // Draft on both so that the reference's lazily pending MTP rows are flushed too, then compare everything.
    std::vector<imp_token> d1(3), d2(3);
    ASSERT_EQ(imp_mtp_draft(spec.ctx, out[j], 3, d1.data(), nullptr), IMP_OK);
    ASSERT_EQ(imp_mtp_draft(ref.ctx, plain[1 + j], 3, d2.data(), nullptr), IMP_OK);
    EXPECT_EQ(d1, d2);
    const int mtp_rows = imp_context_n_past(ref.ctx);  // rows 0..n_past-1 are written by the drafts
    EXPECT_EQ(spec.ctx->engine->forward().DumpState(mtp_rows), ref.ctx->engine->forward().DumpState(mtp_rows))
        << "state differs after accepting " << j << " of " << k;
  }
}

TEST_P(Parity, ResetGivesWhatAFreshContextGives) {
  Handle a(models().path(GetParam())), b(models().path(GetParam()));
  imp_sampling_params sp = imp_sampling_default_params();
  sp.temperature = 0.9f;
  sp.top_k = 20;
  sp.seed = 77;
  ASSERT_EQ(imp_context_set_sampling(a.ctx, &sp), IMP_OK);
  ASSERT_EQ(imp_context_set_sampling(b.ctx, &sp), IMP_OK);
  auto prompt = prompt_for(a.vocab(), 12, 6);
  std::vector<imp_token> first = by_hand(a.ctx, a.vocab(), prompt, 3, 40, 1);
  ASSERT_EQ(imp_context_reset(a.ctx), IMP_OK);
  std::vector<imp_token> again = by_hand(a.ctx, a.vocab(), prompt, 3, 40, 1);
  EXPECT_EQ(first, again);
  EXPECT_EQ(generate(b.ctx, prompt, 3, 40), first);  // generate is the same loop
}

INSTANTIATE_TEST_SUITE_P(Models, Parity,
                         ::testing::Values("tiny_dense", "tiny_moe", "qwen35_dense", "qwen35_moe", "qwen3_next"),
                         [](const auto& info) { return info.param; });

// The first draft after a prefill depends on the prompt rows PrefillMtp put into the MTP cache: the draft
// probabilities through the C ABI equal the spec reference's chain (which attends to every prompt row), for a
// prompt prefilled whole or in chunks.
TEST(MtpPrefill, FirstDraftsMatchTheReferenceChain) {
  for (const char* name : {"qwen35_dense", "qwen35_moe", "qwen3_next"}) {
    imp::test::Golden g = imp::test::load_golden(name);
    Handle h(g.dir);
    imp_sampling_params sp = imp_sampling_default_params();
    sp.temperature = 1.0f;
    ASSERT_EQ(imp_context_set_sampling(h.ctx, &sp), IMP_OK);
    const auto& chain = g.tensor("mtp_chain_logits");
    for (int chunks : {1, 4}) {
      ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
      const int n = int(g.prompt.size());
      for (int c = 0; c < chunks; ++c) {
        int b = n * c / chunks, e = n * (c + 1) / chunks;
        ASSERT_EQ(imp_prefill(h.ctx, g.prompt.data() + b, e - b, IMP_LOGITS_NONE, nullptr, 0), IMP_OK);
      }
      imp_token d;
      float q;
      ASSERT_EQ(imp_mtp_draft(h.ctx, g.greedy[0], 1, &d, &q), IMP_OK);
      // softmax of the reference's first chain step at the drafted token
      const float* row = chain.row(0);
      double mx = *std::max_element(row, row + chain.cols()), s = 0;
      for (int v = 0; v < chain.cols(); ++v) s += std::exp(double(row[v]) - mx);
      double want = std::exp(double(row[d]) - mx) / s;
      EXPECT_NEAR(q, want, 1e-4 * std::max(1.0, want)) << name << ", chunks " << chunks;
    }
  }
}

class SpecErrors : public ::testing::Test {
 protected:
  SpecErrors() : h_(models().path("tiny_dense"), 32) {}
  Handle h_;
};

TEST_F(SpecErrors, BadDraftAndVerifyCallsLeaveTheContextUsable) {
  imp_token d[IMP_MAX_DRAFT + 1], out[IMP_MAX_DRAFT + 2];
  int32_t n_out, n_acc;
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 1, 2, d, nullptr), IMP_ERR_BAD_STATE);  // nothing prefilled
  auto prompt = prompt_for(h_.vocab(), 20, 8);
  ASSERT_EQ(imp_prefill(h_.ctx, prompt.data(), 20, IMP_LOGITS_NONE, nullptr, 0), IMP_OK);
  EXPECT_EQ(imp_mtp_verify(h_.ctx, d, 1, out, 2, &n_out, &n_acc), IMP_ERR_BAD_STATE);  // no draft yet
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 1, 0, d, nullptr), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 1, -3, d, nullptr), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 1, IMP_MAX_DRAFT + 1, d, nullptr), IMP_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 96, 2, d, nullptr), IMP_ERR_TOKEN_OUT_OF_RANGE);
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 1, 12, d, nullptr), IMP_ERR_CONTEXT_FULL);  // 20 + 12 + 1 > 32
  EXPECT_NE(std::string(imp_last_error()).find("context"), std::string::npos);
  EXPECT_EQ(imp_mtp_draft(h_.ctx, 1, 4, nullptr, nullptr), IMP_ERR_NULL_ARGUMENT);

  ASSERT_EQ(imp_mtp_draft(h_.ctx, 1, 4, d, nullptr), IMP_OK);
  imp_token bad[4] = {d[0], 500, d[2], d[3]};
  EXPECT_EQ(imp_mtp_verify(h_.ctx, bad, 4, out, 5, &n_out, &n_acc), IMP_ERR_TOKEN_OUT_OF_RANGE);
  EXPECT_EQ(imp_mtp_verify(h_.ctx, d, 5, out, 6, &n_out, &n_acc), IMP_ERR_INVALID_ARGUMENT);  // more than drafted
  EXPECT_EQ(imp_mtp_verify(h_.ctx, d, 4, out, 4, &n_out, &n_acc), IMP_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(imp_context_n_past(h_.ctx), 20);
  // The draft still stands and the context still works.
  ASSERT_EQ(imp_mtp_verify(h_.ctx, d, 4, out, 5, &n_out, &n_acc), IMP_OK) << imp_last_error();
  EXPECT_EQ(imp_context_n_past(h_.ctx), 21 + n_acc);
  EXPECT_EQ(imp_mtp_verify(h_.ctx, d, 4, out, 5, &n_out, &n_acc), IMP_ERR_BAD_STATE);  // consumed

  // Greedy drafts, then sampling switched on: there are no draft distributions to verify against.
  ASSERT_EQ(imp_mtp_draft(h_.ctx, out[n_out - 1], 2, d, nullptr), IMP_OK);
  imp_sampling_params sp = imp_sampling_default_params();
  sp.temperature = 0.8f;
  ASSERT_EQ(imp_context_set_sampling(h_.ctx, &sp), IMP_OK);
  const int32_t past = imp_context_n_past(h_.ctx);
  EXPECT_EQ(imp_mtp_verify(h_.ctx, d, 2, out, 3, &n_out, &n_acc), IMP_ERR_BAD_STATE);
  EXPECT_NE(std::string(imp_last_error()).find("sampling"), std::string::npos) << imp_last_error();
  EXPECT_EQ(imp_context_n_past(h_.ctx), past);
  // Drafting again under the new sampler works.
  ASSERT_EQ(imp_mtp_draft(h_.ctx, out[n_out - 1], 2, d, nullptr), IMP_OK);
  EXPECT_EQ(imp_mtp_verify(h_.ctx, d, 2, out, 3, &n_out, &n_acc), IMP_OK) << imp_last_error();
}

TEST(SpecUnsupported, ModelWithoutMtpHead) {
  TempDir d;
  TinyModelOptions o;
  o.mtp = false;
  imp::test::write_tiny_model(d.path(), o);
  Handle h(d.path());
  imp_model_info info;
  info.size = sizeof info;
  ASSERT_EQ(imp_model_get_info(h.model, &info), IMP_OK);
  EXPECT_EQ(info.n_mtp_layer, 0);
  std::vector<imp_token> p = {1, 2, 3};
  ASSERT_EQ(imp_prefill(h.ctx, p.data(), 3, IMP_LOGITS_NONE, nullptr, 0), IMP_OK);
  imp_token dr[2];
  EXPECT_EQ(imp_mtp_draft(h.ctx, 1, 2, dr, nullptr), IMP_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(imp_last_error()).find("MTP"), std::string::npos);
  imp_generate_params gp = imp_generate_default_params();
  gp.n_draft = 2;
  EXPECT_EQ(imp_generate(h.ctx, p.data(), 3, &gp, nullptr, nullptr, nullptr, 0, nullptr, nullptr), IMP_ERR_UNSUPPORTED);
  gp.n_draft = 0;
  gp.max_tokens = 5;
  EXPECT_EQ(imp_generate(h.ctx, p.data(), 3, &gp, nullptr, nullptr, nullptr, 0, nullptr, nullptr), IMP_OK);
}

TEST(Generate, StopsOnCallbackEosAndContextFull) {
  Handle h(models().path("tiny_dense"), 40);
  auto prompt = prompt_for(h.vocab(), 10, 9);
  std::vector<imp_token> plain = generate(h.ctx, prompt, 0, 20);
  ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
  imp_generate_params gp = imp_generate_default_params();
  gp.n_draft = 3;
  gp.max_tokens = 100;
  gp.eos_token = plain[6];
  imp_stop_reason why;
  size_t n = 0;
  std::vector<imp_token> out(100);
  ASSERT_EQ(imp_generate(h.ctx, prompt.data(), 10, &gp, nullptr, nullptr, out.data(), out.size(), &n, &why), IMP_OK);
  EXPECT_EQ(why, IMP_STOP_EOS);
  EXPECT_LE(n, 7u);
  EXPECT_EQ(out[n - 1], plain[6]);

  ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
  int calls = 0;
  auto cb = [](imp_token, void* ud) -> int32_t { return ++*static_cast<int*>(ud) >= 4; };
  gp.eos_token = -2;
  ASSERT_EQ(imp_generate(h.ctx, prompt.data(), 10, &gp, cb, &calls, nullptr, 0, &n, &why), IMP_OK);
  EXPECT_EQ(why, IMP_STOP_CALLBACK);
  EXPECT_EQ(n, 4u);

  ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
  ASSERT_EQ(imp_generate(h.ctx, prompt.data(), 10, &gp, nullptr, nullptr, out.data(), out.size(), &n, &why), IMP_OK);
  EXPECT_EQ(why, IMP_STOP_CONTEXT_FULL);
  EXPECT_EQ(std::vector<imp_token>(out.begin(), out.begin() + 20), plain);
}

}  // namespace

namespace {

// Both rollback strategies of verify (per-row states, snapshot + re-forward) leave the same tokens and state.
TEST(Rollback, KeepRowStatesAndSnapshotReforwardAgree) {
  for (const char* name : {"tiny_dense", "tiny_moe"}) {
    Handle a(models().path(name)), b(models().path(name));
    b.ctx->engine->set_rollback_mode(imp::RollbackMode::SnapshotReforward);
    auto prompt = prompt_for(a.vocab(), 16, 12);
    auto ta = by_hand(a.ctx, a.vocab(), prompt, 3, 48, 2);
    auto tb = by_hand(b.ctx, b.vocab(), prompt, 3, 48, 2);
    EXPECT_EQ(ta, tb) << name;
    const int rows = imp_context_n_past(a.ctx) - 1;
    EXPECT_EQ(a.ctx->engine->forward().DumpState(rows), b.ctx->engine->forward().DumpState(rows)) << name;
  }
}

}  // namespace

namespace {

// A draft vocabulary (the MTP head scores only the first ids) changes acceptance, never the output.
TEST(DraftVocabulary, GreedyOutputIsUnchanged) {
  for (const char* name : {"tiny_dense", "tiny_moe", "qwen35_moe"}) {
    Handle h(models().path(name));
    auto prompt = prompt_for(h.vocab(), 16, 14);
    std::vector<imp_token> plain = generate(h.ctx, prompt, 0, 48);
    for (int limit : {1, h.vocab() / 3, h.vocab() - 1}) {
      h.ctx->engine->set_draft_vocab(limit);
      ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
      EXPECT_EQ(generate(h.ctx, prompt, 3, 48), plain) << name << ", draft vocabulary " << limit;
    }
  }
}

}  // namespace

namespace {

// IMP_DRAFT_AUTO picks k (0 included) step by step: greedy output still equals plain decoding.
TEST(AdaptiveDraft, GreedyOutputEqualsPlainDecoding) {
  for (const char* name : {"tiny_dense", "tiny_moe", "qwen3_next"}) {
    Handle h(models().path(name));
    auto prompt = prompt_for(h.vocab(), 16, 15);
    std::vector<imp_token> plain = generate(h.ctx, prompt, 0, 96);
    ASSERT_EQ(imp_context_reset(h.ctx), IMP_OK);
    EXPECT_EQ(generate(h.ctx, prompt, IMP_DRAFT_AUTO, 96), plain) << name;
  }
  imp_generate_params gp = imp_generate_default_params();
  gp.n_draft = -2;
  Handle h(models().path("tiny_dense"));
  imp_token t = 1;
  EXPECT_EQ(imp_generate(h.ctx, &t, 1, &gp, nullptr, nullptr, nullptr, 0, nullptr, nullptr), IMP_ERR_INVALID_ARGUMENT);
}

}  // namespace
