// Gated full attention on the CPU.
//   q_proj: H -> nh*2*hd, per head [q_h | gate_h];  k_proj, v_proj: H -> nkv*hd
//   q, k: zero-centred RMSNorm over hd per head, then RoPE on the first n_rot dims
//   attn_h = softmax(q_h K^T / sqrt(hd)) V over positions 0..pos (causal), head h reads kv head h / (nh/nkv)
//   out = o_proj(attn * sigmoid(gate))
#include "cpu/layers.h"
#include "cpu/ops.h"

#include <cmath>

namespace imp::cpu {

void rope_neox(float* v, int n_rot, int pos, float theta) {
  const int half = n_rot / 2;
  for (int i = 0; i < half; ++i) {
    float inv_freq = float(1.0 / std::pow(double(theta), double(2 * i) / double(n_rot)));
    float angle = float(pos) * inv_freq;
    float c = std::cos(angle), s = std::sin(angle);
    float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x2 * c + x1 * s;
  }
}

void full_attention(ThreadPool& pool, const ModelConfig& c, const FullAttentionWeights& w, const float* x, int T,
                    int pos0, KvCache& cache, float* out) {
  const int nh = c.n_head, nkv = c.n_head_kv, hd = c.head_dim, group = nh / nkv;
  std::vector<float> qg(size_t(T) * nh * 2 * hd), k(size_t(T) * nkv * hd), v(size_t(T) * nkv * hd);
  matmul(pool, w.q, x, T, qg.data());
  matmul(pool, w.k, x, T, k.data());
  matmul(pool, w.v, x, T, v.data());

  // q/k norm and RoPE; keys and values go into the cache at their positions.
  std::vector<float> q(size_t(T) * nh * hd);
  for (int t = 0; t < T; ++t) {
    const int pos = pos0 + t;
    for (int h = 0; h < nh; ++h) {
      float* qh = &q[(size_t(t) * nh + h) * hd];
      rms_norm(&qg[(size_t(t) * nh + h) * 2 * hd], w.q_norm.data(), hd, c.rms_norm_eps, qh);
      rope_neox(qh, c.n_rot, pos, c.rope_theta);
    }
    for (int h = 0; h < nkv; ++h) {
      float* kc = &cache.k[(size_t(pos) * nkv + h) * hd];
      rms_norm(&k[(size_t(t) * nkv + h) * hd], w.k_norm.data(), hd, c.rms_norm_eps, kc);
      rope_neox(kc, c.n_rot, pos, c.rope_theta);
      const float* vs = &v[(size_t(t) * nkv + h) * hd];
      std::copy(vs, vs + hd, &cache.v[(size_t(pos) * nkv + h) * hd]);
    }
  }

  // Causal attention per (row, head), gated by sigmoid(gate).
  std::vector<float> attn(size_t(T) * nh * hd);
  const float scale = 1.0f / std::sqrt(float(hd));
  pool.parallel_for(T * nh, [&](int i0, int i1) {
    std::vector<float> scores;
    for (int i = i0; i < i1; ++i) {
      const int t = i / nh, h = i % nh, kvh = h / group, n_keys = pos0 + t + 1;
      const float* qh = &q[(size_t(t) * nh + h) * hd];
      scores.resize(n_keys);
      float mx = -INFINITY;
      for (int j = 0; j < n_keys; ++j) {
        scores[j] = dot(qh, &cache.k[(size_t(j) * nkv + kvh) * hd], hd) * scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0;
      for (int j = 0; j < n_keys; ++j) sum += (scores[j] = std::exp(scores[j] - mx));
      float* o = &attn[(size_t(t) * nh + h) * hd];
      std::fill(o, o + hd, 0.0f);
      for (int j = 0; j < n_keys; ++j) {
        const float p = scores[j] / sum;
        const float* vj = &cache.v[(size_t(j) * nkv + kvh) * hd];
        for (int d = 0; d < hd; ++d) o[d] += p * vj[d];
      }
      const float* gate = &qg[(size_t(t) * nh + h) * 2 * hd + hd];
      for (int d = 0; d < hd; ++d) o[d] *= sigmoid(gate[d]);
    }
  });
  matmul(pool, w.o, attn.data(), T, out);
}

}  // namespace imp::cpu
