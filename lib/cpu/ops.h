// CPU building blocks of the forward pass, all fp32 compute over weights in their stored dtype.
// Activations are row-major (T, n): T tokens, n features.
#pragma once

#include "cpu/thread_pool.h"
#include "model/weights.h"

#include <algorithm>
#include <cmath>

namespace imp::cpu {

// y (T, W.rows) = x (T, W.cols) @ W^T. Each weight row is converted once and dotted with all T rows, so a
// batch of T tokens reads the weights once. Row results do not depend on T or the thread count.
void matmul(ThreadPool& pool, const Mat& W, const float* x, int T, float* y);

// Dot product with a fixed summation order (8 partial sums), shared by every kernel that reduces.
float dot(const float* a, const float* b, int n);

// Zero-centred RMSNorm with the +1 already folded into scale: y = x * rsqrt(mean(x^2) + eps) * scale.
void rms_norm(const float* x, const float* scale, int n, float eps, float* y);
void rms_norm_rows(ThreadPool& pool, const float* x, const float* scale, int T, int n, float eps, float* y);

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
// PyTorch's softplus (beta 1, threshold 20).
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// One embedding row to fp32.
void embed_row(const Mat& table, int token, float* out);

}  // namespace imp::cpu
