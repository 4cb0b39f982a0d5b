// imp-bench-matmul: throughput of the CPU matmul kernel (lib/cpu/ops.cpp) on a model's own matrices, for 1 to 8
// tokens at once, on one thread. Shows how much a verify of k+1 rows costs next to a decode step.
//
//   imp-bench-matmul MODEL_DIR
#include "cpu/ops.h"
#include "model/model.h"

#include <chrono>
#include <cstdio>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: imp-bench-matmul MODEL_DIR\n"), 2;
  auto m = imp::load_model(argv[1]);
  imp::ThreadPool pool(1);
  const imp::LayerWeights& l0 = m->weights.layers[0];
  const std::pair<const char*, const imp::Mat*> mats[] = {
      {"lm_head", &m->weights.lm_head}, {"ffn gate (or router)", l0.ffn.gate.empty() ? &l0.ffn.router : &l0.ffn.gate}};
  for (const auto& [name, W] : mats) {
    double t1 = 0;
    for (int T : {1, 2, 3, 4, 8}) {
      std::vector<float> x(size_t(T) * W->cols, 0.5f), y(size_t(T) * W->rows);
      const int iters = std::max(10, int(2e8 / (double(W->rows) * W->cols * T)));
      imp::cpu::matmul(pool, *W, x.data(), T, y.data());  // warm-up
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) imp::cpu::matmul(pool, *W, x.data(), T, y.data());
      double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
      if (T == 1) t1 = us;
      std::printf("%-22s %5d x %-5d T=%d  %8.1f us  %6.2f GMAC/s  %.2fx the T=1 time\n", name, W->rows, W->cols, T, us,
                  double(W->rows) * W->cols * T / us / 1e3, us / t1);
    }
  }
  return 0;
}
