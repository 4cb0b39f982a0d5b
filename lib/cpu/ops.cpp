#include "cpu/ops.h"

#include "core/half.h"

#include <cmath>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

#if defined(__AVX2__) && defined(__FMA__)
namespace {

// Eight weights of a row as fp32, converted in registers (bf16: shift into the high half; f16: F16C).
template <DType DT>
inline __m256 load8(const void* w, size_t i) {
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + i);
  } else if constexpr (DT == DType::BF16) {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i)));
  }
}

template <DType DT>
inline float load1(const void* w, size_t i) {
  if constexpr (DT == DType::F32) return static_cast<const float*>(w)[i];
  else if constexpr (DT == DType::BF16) return bf16_to_f32(static_cast<const uint16_t*>(w)[i]);
  else return f16_to_f32(static_cast<const uint16_t*>(w)[i]);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// R weight rows against NT activation rows: each weight vector is loaded and converted once for all NT tokens,
// and each x vector once for all R rows. Every (row, token) sum keeps its own accumulator and runs the same FMA
// sequence whatever R and NT are, so results do not depend on the batch size; R x NT independent accumulators
// hide the FMA latency that a single dot product is bound by.
template <DType DT, int R, int NT>
inline void block_dots(const void* w, size_t base, int cols, const float* x, float* out /* (R, NT) */) {
  __m256 acc[R][NT];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NT; ++j) acc[r][j] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= cols; i += 8) {
    __m256 wv[R];
    for (int r = 0; r < R; ++r) wv[r] = load8<DT>(w, base + size_t(r) * cols + i);
    for (int j = 0; j < NT; ++j) {
      const __m256 xv = _mm256_loadu_ps(x + size_t(j) * cols + i);
      for (int r = 0; r < R; ++r) acc[r][j] = _mm256_fmadd_ps(wv[r], xv, acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NT; ++j) {
      float tail = 0;
      for (int k = i; k < cols; ++k) tail += load1<DT>(w, base + size_t(r) * cols + k) * x[size_t(j) * cols + k];
      out[r * NT + j] = hsum(acc[r][j]) + tail;
    }
}

// Rows [r0, r1) for tokens [t, t + NT) in blocks of R rows: R x NT accumulators plus R weight vectors stay within
// the 16 vector registers.
template <DType DT, int NT>
void rows_for_tokens(const Mat& W, const float* xt, int t, float* y, int r0, int r1) {
  constexpr int R = NT <= 2 ? 4 : NT == 3 ? 3 : 2;
  const int rows = W.rows, cols = W.cols;
  float out[R * NT];
  int r = r0;
  for (; r + R <= r1; r += R) {
    block_dots<DT, R, NT>(W.data, size_t(r) * cols, cols, xt, out);
    for (int q = 0; q < R; ++q)
      for (int j = 0; j < NT; ++j) y[size_t(t + j) * rows + r + q] = out[q * NT + j];
  }
  for (; r < r1; ++r) {
    block_dots<DT, 1, NT>(W.data, size_t(r) * cols, cols, xt, out);
    for (int j = 0; j < NT; ++j) y[size_t(t + j) * rows + r] = out[j];
  }
}

template <DType DT>
void matmul_rows(const Mat& W, const float* x, int T, float* y, int r0, int r1) {
  const int cols = W.cols;
  for (int t = 0; t < T; t += 4) {
    const float* xt = x + size_t(t) * cols;
    switch (std::min(4, T - t)) {
      case 4: rows_for_tokens<DT, 4>(W, xt, t, y, r0, r1); break;
      case 3: rows_for_tokens<DT, 3>(W, xt, t, y, r0, r1); break;
      case 2: rows_for_tokens<DT, 2>(W, xt, t, y, r0, r1); break;
      default: rows_for_tokens<DT, 1>(W, xt, t, y, r0, r1); break;
    }
  }
}

}  // namespace
#endif

void matmul(ThreadPool& pool, const Mat& W, const float* x, int T, float* y) {
  const int rows = W.rows, cols = W.cols;
  // Enough rows per chunk that a chunk's work dwarfs the pool's hand-off.
  int grain = std::max(1, 16384 / std::max(1, cols * T));
  pool.parallel_for(rows, [&](int r0, int r1) {
#if defined(__AVX2__) && defined(__FMA__)
    switch (W.dtype) {
      case DType::F32: return matmul_rows<DType::F32>(W, x, T, y, r0, r1);
      case DType::BF16: return matmul_rows<DType::BF16>(W, x, T, y, r0, r1);
      case DType::F16: return matmul_rows<DType::F16>(W, x, T, y, r0, r1);
      default: break;
    }
#endif
    // Portable path (and the formats without a vector loader): convert a row, then dot it with every token.
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
