// Lossless speculative sampling: with temperature > 0 the first two tokens emitted by MTP draft + verify have
// the distribution of plain sampling from the main model. The exact joint distribution P(a) P(b | a) is computed
// from the model's logits; 20,000 seeded speculative draws are compared with it by a chi-square test
// (p > 0.001), for sampler settings where the random MTP head's draft distribution is far from the target.
#include <imp/imp.h>

#include "api/handles.h"
#include "engine/sampler.h"
#include "support/tiny_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <map>

using imp::test::TempDir;
using imp::test::TinyModelOptions;

namespace {

// Regularised upper incomplete gamma Q(s, x): series below s + 1, continued fraction above.
double gamma_q(double s, double x) {
  if (x <= 0) return 1.0;
  const double lg = std::lgamma(s);
  if (x < s + 1) {
    double sum = 1.0 / s, term = sum;
    for (int n = 1; n < 1000; ++n) {
      term *= x / (s + n);
      sum += term;
      if (term < sum * 1e-15) break;
    }
    return 1.0 - sum * std::exp(-x + s * std::log(x) - lg);
  }
  double b = x + 1 - s, c = 1e300, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    double an = -i * (i - s);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::fabs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return std::exp(-x + s * std::log(x) - lg) * h;
}

struct Case {
  const char* name;
  int vocab;
  float temperature;
  int top_k;
  float top_p, min_p;
  double min_tv;    // how far the first draft's distribution must be from the target (total variation)
  int min_accepts;  // draws whose first draft must be accepted, so the accept path is exercised
  int draft_vocab = 0;  // the MTP head scores only ids [0, draft_vocab) (0 = all): q is zero on the rest
};

class Lossless : public ::testing::TestWithParam<Case> {};

TEST_P(Lossless, FirstTwoTokensHaveThePlainSamplingDistribution) {
  const Case cs = GetParam();
  TempDir dir;
  TinyModelOptions o;
  o.seed = 3;
  o.vocab = cs.vocab;  // a small vocabulary keeps the joint table small enough for a chi-square test
  imp::test::write_tiny_model(dir.path(), o);
  imp_model* model = nullptr;
  // IMP_TEST_BACKEND=cuda runs the same test on the GPU backend (tools/gpu-check.sh does).
  imp_model_params mp = imp_model_default_params();
  const char* backend = std::getenv("IMP_TEST_BACKEND");
  if (backend && std::string(backend) == "cuda") mp.backend = IMP_BACKEND_CUDA;
  ASSERT_EQ(imp_model_load(&model, dir.path().c_str(), &mp), IMP_OK) << imp_last_error();
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 32;
  cp.n_threads = 1;
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, model, &cp), IMP_OK);
  ctx->engine->set_draft_vocab(cs.draft_vocab);
  const int V = imp_model_n_vocab(model);
  const std::vector<imp_token> prompt = {5, 1, 7, 2, 6};
  const imp_token X = 3;  // the token after the prompt, given: both emitted tokens come from verification

  imp::SamplingParams sp;
  sp.temperature = cs.temperature;
  sp.top_k = cs.top_k;
  sp.top_p = cs.top_p;
  sp.min_p = cs.min_p;
  imp::Sampler sampler(sp);

  // Exact P(a) and P(b | a) from the main model.
  std::vector<imp_token> seq = prompt;
  seq.push_back(X);
  std::vector<float> logits(V), pa, pb;
  ASSERT_EQ(imp_prefill(ctx, seq.data(), int32_t(seq.size()), IMP_LOGITS_LAST, logits.data(), V), IMP_OK);
  sampler.distribution(logits.data(), V, pa);
  std::map<std::pair<int, int>, double> expected;
  for (int a = 0; a < V; ++a) {
    if (pa[a] <= 0) continue;
    ASSERT_EQ(imp_context_reset(ctx), IMP_OK);
    ASSERT_EQ(imp_prefill(ctx, seq.data(), int32_t(seq.size()), IMP_LOGITS_NONE, nullptr, 0), IMP_OK);
    ASSERT_EQ(imp_decode(ctx, a, logits.data(), V), IMP_OK);
    sampler.distribution(logits.data(), V, pb);
    for (int b = 0; b < V; ++b)
      if (pb[b] > 0) expected[{a, b}] = double(pa[a]) * pb[b];
  }

  // Speculative draws: prefill the prompt, draft 2 after X, verify; once more if only one token came out.
  const int N = 20000;
  std::map<std::pair<int, int>, int> seen;
  std::vector<int> draft1(V, 0);
  int accepted_any = 0, rejected_first = 0;
  imp_sampling_params p = imp_sampling_default_params();
  p.temperature = cs.temperature;
  p.top_k = cs.top_k;
  p.top_p = cs.top_p;
  p.min_p = cs.min_p;
  for (int s = 0; s < N; ++s) {
    p.seed = uint64_t(s);
    ASSERT_EQ(imp_context_set_sampling(ctx, &p), IMP_OK);
    ASSERT_EQ(imp_context_reset(ctx), IMP_OK);
    ASSERT_EQ(imp_prefill(ctx, prompt.data(), int32_t(prompt.size()), IMP_LOGITS_NONE, nullptr, 0), IMP_OK);
    imp_token d[2], out[3];
    int32_t n_out, n_acc;
    ASSERT_EQ(imp_mtp_draft(ctx, X, 2, d, nullptr), IMP_OK);
    draft1[d[0]]++;
    ASSERT_EQ(imp_mtp_verify(ctx, d, 2, out, 3, &n_out, &n_acc), IMP_OK);
    (n_acc > 0 ? accepted_any : rejected_first)++;
    int a = out[0], b;
    if (n_out >= 2) {
      b = out[1];
    } else {
      ASSERT_EQ(imp_mtp_draft(ctx, a, 2, d, nullptr), IMP_OK);
      ASSERT_EQ(imp_mtp_verify(ctx, d, 2, out, 3, &n_out, &n_acc), IMP_OK);
      b = out[0];
    }
    ASSERT_TRUE(expected.count({a, b})) << "emitted (" << a << ", " << b << "), which plain sampling never emits";
    seen[{a, b}]++;
  }

  // How far the draft is from the target: total variation between the empirical first-draft and P(a).
  double tv = 0;
  for (int v = 0; v < V; ++v) tv += std::fabs(double(draft1[v]) / N - pa[v]);
  tv /= 2;
  // Cells expected fewer than 5 times are pooled into one, as the chi-square approximation needs.
  double chi2 = 0, pool_e = 0, pool_o = 0;
  int cells = 0;
  for (auto& [cell, pr] : expected) {
    double e = pr * N, o = seen.count(cell) ? seen[cell] : 0;
    if (e < 5) {
      pool_e += e;
      pool_o += o;
      continue;
    }
    chi2 += (o - e) * (o - e) / e;
    ++cells;
  }
  if (pool_e > 0) {
    chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
    ++cells;
  }
  const int df = cells - 1;
  const double pvalue = gamma_q(df / 2.0, chi2 / 2.0);
  std::printf("[ %s ] cells %d, chi2 %.2f, df %d, p = %.4f, TV(draft, target) = %.3f, first draft accepted %d / %d\n",
              cs.name, cells, chi2, df, pvalue, tv, accepted_any, N);
  EXPECT_GT(pvalue, 0.001);
  EXPECT_GE(tv, cs.min_tv) << "the draft distribution is not as far from the target as this case claims";
  EXPECT_GE(accepted_any, cs.min_accepts) << "the accept path was not exercised enough";
  EXPECT_GT(rejected_first, 200) << "the reject path was not exercised";
  imp_context_free(ctx);
  imp_model_free(model);
}

INSTANTIATE_TEST_SUITE_P(Settings, Lossless,
                         ::testing::Values(Case{"v8_t4", 8, 4.0f, 0, 1.0f, 0.0f, 0.0, 2000},
                                           Case{"v8_t1_far", 8, 1.0f, 0, 1.0f, 0.0f, 0.9, 50},
                                           Case{"v12_t1.5_topk6_topp0.95_minp0.02", 12, 1.5f, 6, 0.95f, 0.02f, 0.5, 200},
                                           Case{"v8_t4_draft_vocab5", 8, 4.0f, 0, 1.0f, 0.0f, 0.0, 1000, 5}),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& c : n) if (c == '.') c = '_';
                           return n;
                         });

TEST(ChiSquare, SurvivalFunctionMatchesKnownValues) {
  EXPECT_NEAR(gamma_q(15 / 2.0, 37.70 / 2.0), 0.001, 2e-5);  // chi2(15) at its 0.999 quantile
  EXPECT_NEAR(gamma_q(1 / 2.0, 3.841 / 2.0), 0.05, 1e-4);
}

}  // namespace
