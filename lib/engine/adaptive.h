// The adaptive draft length: before each speculative cycle, pick k (0 = plain decoding) to maximise expected
// tokens per second from what this context has measured so far:
//   E(k)    = 1 + sum_{i=1..k} prod_{j=1..i} alpha_j      alpha_j: acceptance at depth j given depth j-1 accepted
//   cost(k) = verify(k) + k * draft_step                   cost(0) = decode step
//   k*      = argmax_k E(k) / cost(k)
// alpha is an exponential moving average of the engine's own counters; each cost is a moving average of its
// wall-clock samples (the first one replaced by the second, since a backend's first step of a shape may record a
// CUDA graph; a sample above twice the average counts as twice the average). Averages and not minimums: the
// decode cost is sampled far less often than the drafting costs, and the minimum of many noisy samples sits lower
// than the minimum of a few, which made drafting look faster than it was on a small, launch-bound model. Costs of
// k not measured yet come from a straight line through the measured ones, acceptance at unmeasured depths from
// the deepest measured one, discounted. When plain decoding wins, a k = 1 probe runs every kProbeEvery steps so
// that a change in acceptance is noticed, and while drafting one plain step every kRefreshEvery cycles keeps the
// decode cost current. The choice depends only on the past, so
// verification keeps the output exact (greedy) or distributed as plain sampling; with temperature > 0 the random
// stream then depends on timings, so runs are not bit-reproducible across machines.
//
// Why a depth's first sample sets its acceptance outright (ema from 0): that optimism is what makes the policy try
// deep drafts at all. Starting the averages from a prior instead (0.7 at depth 1, 0.9 x the depth above) was
// measured on the H100 (demo model, 12 prompts x 256 tokens per class, 2026-11-24): greedy `auto` fell from
// 1.25-1.38x to 1.10-1.19x plain decoding, stuck at k = 1-2 because an unmeasured depth's pessimistic prior never
// earned the cycles that would measure it, and sampled `auto` did not improve. A measured 0 reads as unmeasured
// here (then the prior); the next sample at that depth sets it. Likewise one policy per imp_generate call, not per
// context: a policy kept across calls (tried the same day) settled at k = 1 and never re-measured deeper drafts,
// and greedy `auto` fell to 0.93-1.04x plain (docs/bench/2026-11-24-h100-demo-adaptive-*-experiment.txt).
#pragma once

#include "engine/engine.h"

#include <array>

namespace imp {

class AdaptiveDraft {
 public:
  explicit AdaptiveDraft(int k_max) : k_max_(k_max < 1 ? 1 : (k_max > kMaxDraft ? kMaxDraft : k_max)) {}

  // The k for the next cycle (0 = decode one token plainly).
  int choose();
  // Report a plain decode step / a cycle of k drafts with its times and how many drafts were accepted.
  void on_decode(double ms);
  void on_cycle(int k, int accepted, double draft_ms, double verify_ms);

  double expected_tokens(int k) const;
  double cost_ms(int k) const;

 private:
  static constexpr double kDecay = 0.9;    // EMA weight of the past
  static constexpr int kProbeEvery = 16;   // plain steps between k = 1 probes
  static constexpr int kRefreshEvery = 12; // drafting cycles between plain steps
  int k_max_;
  std::array<double, kMaxDraft + 1> alpha_{};      // alpha_[j], j >= 1; 0 = unmeasured
  std::array<double, kMaxDraft + 1> verify_ms_{};  // verify cost by k; 0 = unmeasured
  std::array<int, kMaxDraft + 1> verify_n_{};      // samples of each
  double draft_step_ms_ = 0, decode_ms_ = 0;
  int plain_streak_ = 0, draft_streak_ = 0;
  int decodes_ = 0, cycles_ = 0;  // samples so far (the first of a shape may include recording a CUDA graph)
};

}  // namespace imp
