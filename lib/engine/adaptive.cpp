#include "engine/adaptive.h"

#include <algorithm>

namespace imp {

namespace {
double ema(double old, double x, double decay) { return old == 0 ? x : decay * old + (1 - decay) * x; }
constexpr double kCostDecay = 0.8;
// A wall-clock cost sample into its moving average (adaptive.h says why an average, and why the first is dropped).
double add_cost(double avg, double x, int n_before) {
  if (n_before <= 1) return x;  // the first sample, or the second replacing it
  return kCostDecay * avg + (1 - kCostDecay) * std::min(x, 2 * avg);
}
}  // namespace

double AdaptiveDraft::expected_tokens(int k) const {
  double e = 1, p = 1;
  for (int j = 1; j <= k; ++j) {
    // An unmeasured depth is assumed to accept like the deepest measured one, discounted.
    double a = alpha_[j];
    if (a == 0) a = j > 1 && alpha_[j - 1] > 0 ? 0.9 * alpha_[j - 1] : 0.7;
    p *= a;
    e += p;
  }
  return e;
}

double AdaptiveDraft::cost_ms(int k) const {
  if (k == 0) return decode_ms_;
  double draft = draft_step_ms_ * k;
  if (verify_ms_[k] > 0) return verify_ms_[k] + draft;
  // A line through the two nearest measured verify costs (or one point and the decode cost at k = 0).
  int lo = 0, hi = 0;
  for (int j = k - 1; j >= 1 && !lo; --j) if (verify_ms_[j] > 0) lo = j;
  for (int j = k + 1; j <= kMaxDraft && !hi; ++j) if (verify_ms_[j] > 0) hi = j;
  double v;
  if (lo && hi) v = verify_ms_[lo] + (verify_ms_[hi] - verify_ms_[lo]) * (k - lo) / double(hi - lo);
  else if (lo) v = verify_ms_[lo] + (verify_ms_[lo] - decode_ms_) * (k - lo) / double(lo);
  else if (hi) v = decode_ms_ + (verify_ms_[hi] - decode_ms_) * k / double(hi);
  else v = decode_ms_ * (1 + 0.25 * k);
  return std::max(v, decode_ms_) + draft;
}

int AdaptiveDraft::choose() {
  // Measure first: two cycles at k = 3 (or k_max), and two plain steps; deeper k are estimated, then measured when
  // chosen. Two of each because a backend's first step of a shape may run eagerly while it records the CUDA graph
  // that later steps replay (several times slower on a small model); the costs keep the minimum.
  if (cycles_ < 2) return std::min(k_max_, 3);
  if (decodes_ < 2) return 0;
  int best = 0;
  double best_rate = 1.0 / cost_ms(0);
  for (int k = 1; k <= k_max_; ++k) {
    double rate = expected_tokens(k) / cost_ms(k);
    if (rate > best_rate) best = k, best_rate = rate;
  }
  if (best == 0 && ++plain_streak_ >= kProbeEvery) {
    plain_streak_ = 0;
    return 1;
  }
  if (best > 0) {
    plain_streak_ = 0;
    // The decode cost is only measured on plain steps: refresh it now and then while drafting.
    if (++draft_streak_ >= kRefreshEvery) {
      draft_streak_ = 0;
      return 0;
    }
  }
  return best;
}

void AdaptiveDraft::on_decode(double ms) {
  decode_ms_ = add_cost(decode_ms_, ms, decodes_);
  ++decodes_;
}

void AdaptiveDraft::on_cycle(int k, int accepted, double draft_ms, double verify_ms) {
  if (k <= 0) return;
  draft_step_ms_ = add_cost(draft_step_ms_, draft_ms / k, cycles_);
  verify_ms_[k] = add_cost(verify_ms_[k], verify_ms, verify_n_[k]);
  ++cycles_;
  ++verify_n_[k];
  // Depths 1..accepted were accepted; depth accepted+1 (if drafted) was the first rejection.
  for (int j = 1; j <= std::min(k, accepted + 1); ++j) alpha_[j] = ema(alpha_[j], j <= accepted ? 1.0 : 0.0, kDecay);
}

}  // namespace imp
