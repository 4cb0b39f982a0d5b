#include "cpu/ops.h"

#include <cmath>
#include <vector>

namespace imp::cpu {

float dot(const float* a, const float* b, int n) {
  // Eight independent partial sums: the compiler keeps them in one vector register (no -ffast-math needed).
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void matmul(ThreadPool& pool, const Mat& W, const float* x, int T, float* y) {
  const int rows = W.rows, cols = W.cols;
  // Enough rows per chunk that a chunk's work dwarfs the pool's hand-off.
  int grain = std::max(1, 16384 / std::max(1, cols * T));
  pool.parallel_for(rows, [&](int r0, int r1) {
    thread_local std::vector<float> wrow;
    if (W.dtype != DType::F32) wrow.resize(cols);
    for (int r = r0; r < r1; ++r) {
      const float* w;
      if (W.dtype == DType::F32) {
        w = static_cast<const float*>(W.data) + size_t(r) * cols;
      } else {
        to_f32(W.data, W.dtype, size_t(r) * cols, cols, wrow.data());
        w = wrow.data();
      }
      for (int t = 0; t < T; ++t) y[size_t(t) * rows + r] = dot(w, x + size_t(t) * cols, cols);
    }
  }, grain);
}

void rms_norm(const float* x, const float* scale, int n, float eps, float* y) {
  float ss = dot(x, x, n);
  float r = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * r * scale[i];
}

void rms_norm_rows(ThreadPool& pool, const float* x, const float* scale, int T, int n, float eps, float* y) {
  pool.parallel_for(T, [&](int t0, int t1) {
    for (int t = t0; t < t1; ++t) rms_norm(x + size_t(t) * n, scale, n, eps, y + size_t(t) * n);
  }, std::max(1, 4096 / std::max(1, n)));
}

void embed_row(const Mat& table, int token, float* out) {
  to_f32(table.data, table.dtype, size_t(token) * table.cols, table.cols, out);
}

}  // namespace imp::cpu
