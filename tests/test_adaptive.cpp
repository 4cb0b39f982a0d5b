// The adaptive draft-length policy on synthetic measurements: it picks the k with the best expected tokens per
// millisecond, falls back to plain decoding when drafting does not pay, and probes again later.
#include "engine/adaptive.h"

#include <gtest/gtest.h>

using imp::AdaptiveDraft;

namespace {

// Feeds `cycles` cycles at each k in 1..k_max with depth-wise acceptance `alpha`, a decode cost and linear costs.
void train(AdaptiveDraft& p, int k_max, double alpha, double decode, double verify_per_k, double draft) {
  for (int rep = 0; rep < 50; ++rep) {
    p.on_decode(decode);
    for (int k = 1; k <= k_max; ++k) {
      // accepted = the expected run length, rounded down, so alpha is reproduced on average over reps
      int acc = 0;
      double u = (rep % 10 + 0.5) / 10.0, pr = 1;
      while (acc < k && (pr *= alpha) > u) ++acc;
      p.on_cycle(k, acc, draft * k, decode + verify_per_k * k);
    }
  }
}

TEST(AdaptiveDraft, MeasuresFirstThenPicksTheBestRate) {
  AdaptiveDraft p(4);
  EXPECT_EQ(p.choose(), 3);  // nothing measured: two cycles at k = 3 first, then two plain steps
  p.on_cycle(3, 3, 0.15, 1.15);
  EXPECT_EQ(p.choose(), 3);
  p.on_cycle(3, 3, 0.15, 1.15);
  EXPECT_EQ(p.choose(), 0);
  p.on_decode(5.0);  // a first step that recorded a CUDA graph: slow
  EXPECT_EQ(p.choose(), 0);
  train(p, 4, 0.9, 1.0, 0.05, 0.05);  // cheap drafts and verifies, high acceptance: draft deep
  EXPECT_GE(p.choose(), 3);
  EXPECT_GT(p.expected_tokens(4), p.expected_tokens(1));
}

TEST(AdaptiveDraft, FallsBackToPlainDecodingAndProbes) {
  AdaptiveDraft p(4);
  train(p, 4, 0.1, 1.0, 0.8, 0.5);  // expensive and rarely accepted: plain decoding is faster
  int zeros = 0, probes = 0;
  for (int i = 0; i < 64; ++i) {
    int k = p.choose();
    zeros += k == 0;
    probes += k == 1;
  }
  EXPECT_GE(zeros, 56);
  EXPECT_GE(probes, 3);  // one k = 1 probe every 16 plain steps
}

// A slow first sample of each kind (CUDA graph recording) does not decide: plain decoding, measured twice, wins here.
TEST(AdaptiveDraft, ASlowFirstPlainStepDoesNotHideThatPlainIsFaster) {
  AdaptiveDraft p(4);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(p.choose(), 3);
    p.on_cycle(3, 3, 3 * 0.15, 0.35);  // 4 tokens in 0.8 ms: 5 tokens / ms
  }
  EXPECT_EQ(p.choose(), 0);
  p.on_decode(1.0);  // recording the graph
  EXPECT_EQ(p.choose(), 0);
  p.on_decode(0.17);  // replaying it: 5.9 tokens / ms
  EXPECT_EQ(p.choose(), 0);
}

TEST(AdaptiveDraft, InterpolatesUnmeasuredVerifyCosts) {
  AdaptiveDraft p(8);
  p.on_decode(1.0);
  p.on_cycle(2, 2, 0.2, 1.2);
  p.on_cycle(6, 1, 0.6, 2.0);
  EXPECT_NEAR(p.cost_ms(4), 1.6 + 4 * 0.1, 1e-9);  // verify between k=2 and k=6, plus four draft steps
  EXPECT_NEAR(p.cost_ms(0), 1.0, 1e-9);
}

}  // namespace
