// The sampler: logits -> a probability distribution (temperature, then top-k, top-p and min-p on the tempered
// distribution) -> a token. Temperature 0 is greedy (argmax, ties to the lowest id). The random state lives
// here, seeded, so a run is reproducible from its seed.
#pragma once

#include <cstdint>
#include <vector>

namespace imp {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0f; }
};

// xoshiro256** seeded through splitmix64: small, fast, and the same stream on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next();
  double uniform();  // [0, 1) with 53 random bits

 private:
  uint64_t s_[4];
};

int argmax(const float* x, int n);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p = {}) : params_(p), rng_(p.seed) {}
  const SamplingParams& params() const { return params_; }
  void set_params(const SamplingParams& p) { params_ = p; rng_.reseed(p.seed); }

  // The distribution sampling draws from (sums to 1; zero outside the kept set). Greedy: one-hot argmax.
  void distribution(const float* logits, int n, std::vector<float>& probs) const;
  // Draws from a distribution by inverse CDF with one uniform.
  int draw(const std::vector<float>& probs) { return draw_at(probs, rng_.uniform()); }
  // The same with a given uniform u in [0, 1): the first id whose running sum of positive probs exceeds u * sum.
  static int draw_at(const std::vector<float>& probs, double u);
  // distribution() then draw(), or argmax when greedy (no random draw).
  int sample(const float* logits, int n);
  double uniform() { return rng_.uniform(); }
  // The next n uniforms without using them up (device sampling passes them on), then using up n of them.
  void peek_uniforms(int n, double* out) const {
    Rng copy = rng_;
    for (int i = 0; i < n; ++i) out[i] = copy.uniform();
  }
  void skip_uniforms(int n) {
    for (int i = 0; i < n; ++i) rng_.uniform();
  }

 private:
  SamplingParams params_;
  Rng rng_;
};

}  // namespace imp
