// The FFN on the CPU.
//   dense: down(silu(gate x) * up x)
//   MoE:   p = softmax(router x) (fp32); top-k; if norm_topk_prob renormalise the k weights;
//          y = sum_e w_e down_e(silu(gate_e x) * up_e x) + sigmoid(shared_expert_gate x) * shared(x)
// Tokens are grouped by expert so that each chosen expert's weights are read once per batch.
#include "cpu/layers.h"
#include "cpu/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace imp::cpu {

namespace {

// out (T, H) = down(silu(gate x) * up x) for x (T, H).
void swiglu(ThreadPool& pool, const Mat& gate, const Mat& up, const Mat& down, const float* x, int T, float* out) {
  const int F = gate.rows;
  std::vector<float> g(size_t(T) * F), u(size_t(T) * F);
  matmul(pool, gate, x, T, g.data());
  matmul(pool, up, x, T, u.data());
  for (size_t i = 0; i < g.size(); ++i) g[i] = silu(g[i]) * u[i];
  matmul(pool, down, g.data(), T, out);
}

}  // namespace

void ffn(ThreadPool& pool, const ModelConfig& c, const FfnWeights& w, const float* x, int T, float* out) {
  const int H = c.n_embd;
  if (!c.is_moe) {
    swiglu(pool, w.gate, w.up, w.down, x, T, out);
    return;
  }
  const int E = c.n_expert, k = c.n_expert_used;
  std::vector<float> router(size_t(T) * E);
  matmul(pool, w.router, x, T, router.data());

  // Routing: softmax over all experts, then the top k (ties to the lower index, as torch.topk on CPU does).
  std::vector<std::vector<std::pair<int, float>>> by_expert(E);  // expert -> (row, weight)
  std::vector<int> idx(E);
  for (int t = 0; t < T; ++t) {
    float* p = &router[size_t(t) * E];
    float mx = *std::max_element(p, p + E), sum = 0;
    for (int e = 0; e < E; ++e) sum += (p[e] = std::exp(p[e] - mx));
    for (int e = 0; e < E; ++e) p[e] /= sum;
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float norm = 0;
    for (int i = 0; i < k; ++i) norm += p[idx[i]];
    for (int i = 0; i < k; ++i) {
      float wgt = c.norm_topk_prob ? p[idx[i]] / norm : p[idx[i]];
      by_expert[idx[i]].emplace_back(t, wgt);
    }
  }

  std::fill(out, out + size_t(T) * H, 0.0f);
  std::vector<float> xs, ys;
  for (int e = 0; e < E; ++e) {
    const auto& rows = by_expert[e];
    if (rows.empty()) continue;
    const int n = int(rows.size());
    xs.resize(size_t(n) * H);
    ys.resize(size_t(n) * H);
    for (int i = 0; i < n; ++i) std::copy(x + size_t(rows[i].first) * H, x + size_t(rows[i].first + 1) * H, &xs[size_t(i) * H]);
    swiglu(pool, w.exp_gate[e], w.exp_up[e], w.exp_down[e], xs.data(), n, ys.data());
    for (int i = 0; i < n; ++i) {
      float* o = out + size_t(rows[i].first) * H;
      for (int d = 0; d < H; ++d) o[d] += rows[i].second * ys[size_t(i) * H + d];
    }
  }
  if (!w.shared_gate.empty()) {
    std::vector<float> sh(size_t(T) * H), sg(T);
    swiglu(pool, w.shared_gate, w.shared_up, w.shared_down, x, T, sh.data());
    matmul(pool, w.shared_expert_gate, x, T, sg.data());
    for (int t = 0; t < T; ++t) {
      const float gate = sigmoid(sg[t]);
      for (int d = 0; d < H; ++d) out[size_t(t) * H + d] += gate * sh[size_t(t) * H + d];
    }
  }
}

}  // namespace imp::cpu
