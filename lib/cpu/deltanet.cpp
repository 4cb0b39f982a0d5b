// Gated DeltaNet on the CPU (the recurrent form; the spec's chunked prefill form must equal it).
//   projections -> mixed [q_all | k_all | v_all] (conv_dim), z (HV*dv), b, a (HV)
//   causal depthwise conv (kernel K, state = last K-1 inputs) over mixed, then SiLU
//   q, k: L2-normalised per key head, q *= dk^-1/2; value head j reads key head j / (HV/HK)
//   beta = sigmoid(b); g = -exp(A_log) * softplus(a + dt_bias)
//   per value head, S (dk x dv): S = exp(g) S; u = S^T k; S += k (beta (v - u))^T; o = S^T q
//   y = out_proj(w * rmsnorm(o) * silu(z))  per value head over dv, not zero-centred
#include "cpu/layers.h"
#include "cpu/ops.h"

#include <cmath>

namespace imp::cpu {

namespace {

// Qwen3-Next's fused projections, grouped per key head g: qkvz [q_g | k_g | v_g (r*dv) | z_g (r*dv)] and
// ba [b_g (r) | a_g (r)], into the split layout the rest of the layer uses.
void unfuse_qwen3next(const ModelConfig& c, const float* qkvz, const float* ba, int T, float* mixed, float* z,
                      float* b, float* a) {
  const int HK = c.lin_n_k_heads, HV = c.lin_n_v_heads, dk = c.lin_k_dim, dv = c.lin_v_dim, r = HV / HK;
  const int group = 2 * dk + 2 * r * dv, conv_dim = c.lin_conv_dim();
  for (int t = 0; t < T; ++t) {
    const float* src = qkvz + size_t(t) * HK * group;
    float* m = mixed + size_t(t) * conv_dim;
    for (int g = 0; g < HK; ++g) {
      const float* s = src + size_t(g) * group;
      std::copy(s, s + dk, m + g * dk);
      std::copy(s + dk, s + 2 * dk, m + HK * dk + g * dk);
      std::copy(s + 2 * dk, s + 2 * dk + r * dv, m + 2 * HK * dk + g * r * dv);
      std::copy(s + 2 * dk + r * dv, s + group, z + size_t(t) * HV * dv + g * r * dv);
      const float* sba = ba + size_t(t) * 2 * HV + g * 2 * r;
      std::copy(sba, sba + r, b + size_t(t) * HV + g * r);
      std::copy(sba + r, sba + 2 * r, a + size_t(t) * HV + g * r);
    }
  }
}

void l2_normalize(float* x, int n) {
  float r = 1.0f / std::sqrt(dot(x, x, n) + 1e-6f);
  for (int i = 0; i < n; ++i) x[i] *= r;
}

}  // namespace

void gated_deltanet(ThreadPool& pool, const ModelConfig& c, const DeltaNetWeights& w, const float* x, int T,
                    DeltaNetState& state, float* out, std::vector<DeltaNetState>* row_states) {
  const int HK = c.lin_n_k_heads, HV = c.lin_n_v_heads, dk = c.lin_k_dim, dv = c.lin_v_dim, r = HV / HK;
  const int conv_dim = c.lin_conv_dim(), K = c.lin_conv_kernel;
  std::vector<float> mixed(size_t(T) * conv_dim), z(size_t(T) * HV * dv), b(size_t(T) * HV), a(size_t(T) * HV);
  if (w.fused) {
    std::vector<float> qkvz(size_t(T) * w.qkvz.rows), ba(size_t(T) * w.ba.rows);
    matmul(pool, w.qkvz, x, T, qkvz.data());
    matmul(pool, w.ba, x, T, ba.data());
    unfuse_qwen3next(c, qkvz.data(), ba.data(), T, mixed.data(), z.data(), b.data(), a.data());
  } else {
    matmul(pool, w.qkv, x, T, mixed.data());
    matmul(pool, w.z, x, T, z.data());
    matmul(pool, w.b, x, T, b.data());
    matmul(pool, w.a, x, T, a.data());
  }

  // Causal depthwise conv + SiLU per channel; the window is [state (K-1 rows) | this batch's rows].
  std::vector<float> conv_out(size_t(T) * conv_dim);
  std::vector<float> conv_rows;  // conv window after each row, only when row states are kept
  if (row_states) conv_rows.resize(size_t(T) * (K - 1) * conv_dim);
  pool.parallel_for(conv_dim, [&](int c0, int c1) {
    std::vector<float> win(K - 1 + T);
    for (int ch = c0; ch < c1; ++ch) {
      for (int i = 0; i < K - 1; ++i) win[i] = state.conv[size_t(i) * conv_dim + ch];
      for (int t = 0; t < T; ++t) win[K - 1 + t] = mixed[size_t(t) * conv_dim + ch];
      const float* tap = &w.conv[size_t(ch) * K];
      for (int t = 0; t < T; ++t) {
        float s = 0;
        for (int k = 0; k < K; ++k) s += tap[k] * win[t + k];
        conv_out[size_t(t) * conv_dim + ch] = silu(s);
        if (row_states)
          for (int i = 0; i < K - 1; ++i) conv_rows[(size_t(t) * (K - 1) + i) * conv_dim + ch] = win[t + 1 + i];
      }
      for (int i = 0; i < K - 1; ++i) state.conv[size_t(i) * conv_dim + ch] = win[T + i];
    }
  }, 64);

  // The recurrence, one value head per task, all rows in order.
  std::vector<float> o(size_t(T) * HV * dv);
  const float q_scale = 1.0f / std::sqrt(float(dk));
  if (row_states) {
    row_states->resize(T);
    for (int t = 0; t < T; ++t) {
      (*row_states)[t].S.resize(state.S.size());
      (*row_states)[t].conv.assign(conv_rows.begin() + size_t(t) * (K - 1) * conv_dim,
                                   conv_rows.begin() + size_t(t + 1) * (K - 1) * conv_dim);
    }
  }
  pool.parallel_for(HV, [&](int j0, int j1) {
    std::vector<float> q(dk), k(dk), u(dv), delta(dv);
    for (int j = j0; j < j1; ++j) {
      const int kh = w.v_heads_tiled ? j % HK : j / r;
      float* S = &state.S[size_t(j) * dk * dv];
      for (int t = 0; t < T; ++t) {
        const float* row = &conv_out[size_t(t) * conv_dim];
        std::copy(row + kh * dk, row + (kh + 1) * dk, q.begin());
        std::copy(row + HK * dk + kh * dk, row + HK * dk + (kh + 1) * dk, k.begin());
        const float* v = row + 2 * HK * dk + j * dv;
        l2_normalize(q.data(), dk);
        l2_normalize(k.data(), dk);
        for (float& e : q) e *= q_scale;
        const float beta = sigmoid(b[size_t(t) * HV + j]);
        const float g = w.A[j] * softplus(a[size_t(t) * HV + j] + w.dt_bias[j]);
        const float decay = std::exp(g);
        for (int i = 0; i < dk * dv; ++i) S[i] *= decay;
        std::fill(u.begin(), u.end(), 0.0f);
        for (int i = 0; i < dk; ++i)
          for (int d = 0; d < dv; ++d) u[d] += S[i * dv + d] * k[i];
        for (int d = 0; d < dv; ++d) delta[d] = beta * (v[d] - u[d]);
        for (int i = 0; i < dk; ++i)
          for (int d = 0; d < dv; ++d) S[i * dv + d] += k[i] * delta[d];
        float* oh = &o[(size_t(t) * HV + j) * dv];
        std::fill(oh, oh + dv, 0.0f);
        for (int i = 0; i < dk; ++i)
          for (int d = 0; d < dv; ++d) oh[d] += S[i * dv + d] * q[i];
        if (row_states) std::copy(S, S + dk * dv, &(*row_states)[t].S[size_t(j) * dk * dv]);
      }
    }
  });

  // Gated RMSNorm per value head, then out_proj.
  std::vector<float> y(size_t(T) * HV * dv);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < HV; ++j) {
      const float* oh = &o[(size_t(t) * HV + j) * dv];
      const float* zh = &z[(size_t(t) * HV + j) * dv];
      float* yh = &y[(size_t(t) * HV + j) * dv];
      rms_norm(oh, w.norm.data(), dv, c.rms_norm_eps, yh);
      for (int d = 0; d < dv; ++d) yh[d] *= silu(zh[d]);
    }
  matmul(pool, w.out, y.data(), T, out);
}

}  // namespace imp::cpu
