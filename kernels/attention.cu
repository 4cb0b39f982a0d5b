#include "attention.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

#include <algorithm>

namespace imp::kernels::attention {

namespace {

constexpr int kWarps = 4;

// (Written as a sum rather than a choice: the choice makes ptxas spill registers in some instantiations.)
__device__ __forceinline__ int pos0_of(const AttentionParams& p) { return p.pos0 + (p.pos0_dev ? *p.pos0_dev : 0); }

template <int HD, bool FINAL>
__global__ void __launch_bounds__(kWarps * 32) AttentionSplitKernel(AttentionParams p, int chunk) {
  constexpr int kPer = (HD + 31) / 32;  // output dims per lane: d = lane + 32 * i
  __shared__ __align__(16) float q_s[HD];
  __shared__ float o_s[kWarps][HD];
  __shared__ float m_s[kWarps], l_s[kWarps];

  const int split = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nh = p.n_head, nkv = p.n_head_kv, kvh = h / (nh / nkv);
  const int pos0 = pos0_of(p);
  const int n_keys = pos0 + t + 1;
  const int k0 = split * chunk, k1 = min(k0 + chunk, n_keys);
  const size_t part = (size_t(t) * nh + h) * p.max_splits + split;

  // A split with no key of this row (only with FINAL == false) leaves a neutral partial. With pos0_dev the grid
  // covers every split of n_ctx keys, so most such splits lie past the whole batch; the combine skips those.
  if (k0 >= n_keys) {
    if constexpr (!FINAL) {
      for (int d = threadIdx.x; d < HD; d += blockDim.x) p.work_o[part * HD + d] = 0.0f;
      if (threadIdx.x == 0) p.work_ml[part * 2] = -INFINITY, p.work_ml[part * 2 + 1] = 0.0f;
    }
    return;
  }
  const float* qh = p.q + (size_t(t) * nh + h) * HD;
  for (int d = threadIdx.x; d < HD; d += blockDim.x) q_s[d] = qh[d];
  __syncthreads();

  float m = -INFINITY, l = 0.0f, o[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) o[i] = 0.0f;
  const size_t row_stride = size_t(nkv) * HD;
  const float* kbase = p.k_cache + size_t(kvh) * HD;
  const float* vbase = p.v_cache + size_t(kvh) * HD;

  for (int kb = k0 + warp * 32; kb < k1; kb += kWarps * 32) {
    const int j = kb + lane;
    float score = -INFINITY;
    if (j < k1) {
      const float* kr = kbase + size_t(j) * row_stride;
      float acc = 0.0f;
      if constexpr (HD % 4 == 0) {
#pragma unroll 8
        for (int d = 0; d < HD; d += 4) {
          const float4 kv = *reinterpret_cast<const float4*>(kr + d);
          const float4 qv = *reinterpret_cast<const float4*>(q_s + d);
          acc += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
        }
      } else {
        for (int d = 0; d < HD; ++d) acc += q_s[d] * kr[d];
      }
      score = acc * p.scale;
    }
    const float m_new = fmaxf(m, warp_max(score));
    const float corr = expf(m - m_new);  // 0 on the first block (m = -inf)
    const float pj = j < k1 ? expf(score - m_new) : 0.0f;
    l = l * corr + warp_sum(pj);
#pragma unroll
    for (int i = 0; i < kPer; ++i) o[i] *= corr;
    const int n_here = min(32, k1 - kb);
    for (int jj = 0; jj < n_here; ++jj) {
      const float w = __shfl_sync(kFullMask, pj, jj);
      const float* vr = vbase + size_t(kb + jj) * row_stride;
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int d = lane + 32 * i;
        if (d < HD) o[i] += w * vr[d];
      }
    }
    m = m_new;
  }

  // Merge the warps (a warp that saw no key has m = -inf, l = 0 and contributes nothing).
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    if (d < HD) o_s[warp][d] = o[i];
  }
  if (lane == 0) m_s[warp] = m, l_s[warp] = l;
  __syncthreads();
  float M = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, m_s[w]);
  float L = 0.0f, f[kWarps];
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    f[w] = l_s[w] > 0.0f ? expf(m_s[w] - M) : 0.0f;
    L += l_s[w] * f[w];
  }
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float acc = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) acc += o_s[w][d] * f[w];
    if constexpr (FINAL) {
      const float g = p.gate[(size_t(t) * nh + h) * p.gate_head_stride + d];
      p.out[(size_t(t) * nh + h) * HD + d] = acc / L * sigmoidf_(g);
    } else {
      p.work_o[part * HD + d] = acc;
    }
  }
  if constexpr (!FINAL) {
    if (threadIdx.x == 0) p.work_ml[part * 2] = M, p.work_ml[part * 2 + 1] = L;
  }
}

// Merges the partials of (t, h) of the splits that hold keys and applies the gate. Grid (nh, T), block >= 32
// threads. One such split (only with pos0_dev) is finished as the FINAL split kernel finishes it: the same
// acc / L * sigmoid(gate) on the same values, so the output is that of the host-pos0 launch bit for bit.
template <int HD>
__global__ void AttentionCombineKernel(AttentionParams p, int chunk) {
  const int n_splits = min((pos0_of(p) + p.T + chunk - 1) / chunk, p.max_splits);
  const int h = blockIdx.x, t = blockIdx.y, nh = p.n_head;
  const size_t base = (size_t(t) * nh + h) * p.max_splits;
  if (n_splits == 1) {
    for (int d = threadIdx.x; d < HD; d += blockDim.x) {
      const float g = p.gate[(size_t(t) * nh + h) * p.gate_head_stride + d];
      p.out[(size_t(t) * nh + h) * HD + d] = p.work_o[base * HD + d] / p.work_ml[base * 2 + 1] * sigmoidf_(g);
    }
    return;
  }
  float M = -INFINITY;
  for (int s = 0; s < n_splits; ++s)
    if (p.work_ml[(base + s) * 2 + 1] > 0.0f) M = fmaxf(M, p.work_ml[(base + s) * 2]);
  for (int d = threadIdx.x; d < HD; d += blockDim.x) {
    float L = 0.0f, acc = 0.0f;
    for (int s = 0; s < n_splits; ++s) {
      const float l = p.work_ml[(base + s) * 2 + 1];
      if (l <= 0.0f) continue;
      const float f = expf(p.work_ml[(base + s) * 2] - M);
      L += l * f;
      acc += p.work_o[(base + s) * HD + d] * f;
    }
    const float g = p.gate[(size_t(t) * nh + h) * p.gate_head_stride + d];
    p.out[(size_t(t) * nh + h) * HD + d] = acc / L * sigmoidf_(g);
  }
}

}  // namespace

cudaError_t Attention(const AttentionParams& p, cudaStream_t stream) {
  if (p.T <= 0) return cudaSuccess;
  if (p.n_head_kv <= 0 || p.n_head % p.n_head_kv) IMP_DISPATCH_FAIL("GQA grouping (nh % nkv != 0), nkv", p.n_head_kv);
  if (p.split_keys <= 0 || p.split_keys % 32) IMP_DISPATCH_FAIL("split_keys (a positive multiple of 32)", p.split_keys);
  const bool split_k = p.T <= kMaxSplitRows && p.work_o && p.work_ml;
  if (p.pos0_dev && !split_k) IMP_DISPATCH_FAIL("rows with a device-side pos0 (split-K path, 1..16 rows)", p.T);
  if (p.pos0_dev && p.n_ctx < p.T) IMP_DISPATCH_FAIL("n_ctx with a device-side pos0", p.n_ctx);
  // Keys the last row sees: known here, or bounded by the cache when part of pos0 is on the device.
  const int n_keys_max = p.pos0_dev ? p.n_ctx : p.pos0 + p.T;
  int n_splits = 1, chunk = (n_keys_max + 31) / 32 * 32;
  if (split_k) {
    chunk = p.split_keys;
    n_splits = (n_keys_max + chunk - 1) / chunk;
    if (n_splits > p.max_splits) IMP_DISPATCH_FAIL("key count for the split-K workspace", n_keys_max);
  }
  DISPATCH_HEAD_DIM(p.head_dim, HD, {
    const dim3 grid(n_splits, p.n_head, p.T);
    if (n_splits == 1 && !p.pos0_dev) {
      AttentionSplitKernel<HD, true><<<grid, kWarps * 32, 0, stream>>>(p, chunk);
    } else {  // with pos0_dev the live split count is known only on the device: always partials + combine
      AttentionSplitKernel<HD, false><<<grid, kWarps * 32, 0, stream>>>(p, chunk);
      AttentionCombineKernel<HD><<<dim3(p.n_head, p.T), std::max(32, std::min(HD, 256)), 0, stream>>>(p, chunk);
    }
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::attention
