#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace imp {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Rng::reseed(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }

int argmax(const float* x, int n) { return int(std::max_element(x, x + n) - x); }

void Sampler::distribution(const float* logits, int n, std::vector<float>& probs) const {
  probs.assign(n, 0.0f);
  if (params_.greedy()) {
    probs[argmax(logits, n)] = 1.0f;
    return;
  }
  // Tempered softmax in double: the acceptance ratio p/q of speculative sampling divides these.
  const double inv_t = 1.0 / params_.temperature;
  const double mx = *std::max_element(logits, logits + n) * inv_t;
  std::vector<double> p(n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += (p[i] = std::exp(double(logits[i]) * inv_t - mx));
  for (double& x : p) x /= sum;

  // Temperature alone keeps every token: no order needed (sorting 248320 candidates took most of a sampled
  // step's host time).
  const bool top_k_on = params_.top_k > 0 && params_.top_k < n;
  if (!top_k_on && params_.top_p >= 1.0f && params_.min_p <= 0.0f) {
    for (int i = 0; i < n; ++i) probs[i] = float(p[i]);
    return;
  }
  // Candidates by descending probability (ties to the lower id, so the kept set is deterministic).
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  int keep = n;
  if (top_k_on) keep = params_.top_k;
  std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                    [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  if (top_k_on) {
    // Renormalise over the top k before top-p / min-p look at it.
    double s = 0;
    for (int i = 0; i < keep; ++i) s += p[order[i]];
    for (int i = 0; i < keep; ++i) p[order[i]] /= s;
  }
  if (params_.top_p < 1.0f) {
    double cum = 0;
    int k = 0;
    while (k < keep) {
      cum += p[order[k++]];
      if (cum >= params_.top_p) break;
    }
    keep = std::max(1, k);
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * p[order[0]];
    int k = 1;
    while (k < keep && p[order[k]] >= floor) ++k;
    keep = k;
  }
  double s = 0;
  for (int i = 0; i < keep; ++i) s += p[order[i]];
  for (int i = 0; i < keep; ++i) probs[order[i]] = float(p[order[i]] / s);
}

int Sampler::draw_at(const std::vector<float>& probs, double u) {
  double total = 0;
  for (float x : probs) total += x;
  double cum = 0, target = u * total;
  int last = 0;
  for (int i = 0; i < int(probs.size()); ++i) {
    if (probs[i] <= 0) continue;
    last = i;
    cum += probs[i];
    if (target < cum) return i;
  }
  return last;  // rounding left target at the very top
}

int Sampler::sample(const float* logits, int n) {
  if (params_.greedy()) return argmax(logits, n);
  std::vector<float> probs;
  distribution(logits, n, probs);
  return draw(probs);
}

}  // namespace imp
