#include "gemv.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

namespace imp::kernels::gemv {

namespace {

constexpr int kWarps = 8;  // output rows per block

template <typename W, int T, bool VEC>
__global__ void __launch_bounds__(kWarps * 32, 1) GemvKernel(const W* __restrict__ w, int rows, int cols,
                                                          const float* __restrict__ x, float* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const W* wr = w + size_t(row) * cols;
  float acc[T];
#pragma unroll
  for (int t = 0; t < T; ++t) acc[t] = 0.0f;
  if constexpr (VEC) {
    constexpr int V = kVec<W>;
    // Two 16-byte weight loads in flight per lane before their first use.
    int c = lane * V;
    for (; c + 32 * V < cols; c += 64 * V) {
      float wa[V], wb[V];
      load_vec(wr + c, wa);
      load_vec(wr + c + 32 * V, wb);
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float* xt = x + size_t(t) * cols;
#pragma unroll
        for (int i = 0; i < V; i += 4) {
          const float4 xa = *reinterpret_cast<const float4*>(xt + c + i);
          const float4 xb = *reinterpret_cast<const float4*>(xt + c + 32 * V + i);
          acc[t] += wa[i] * xa.x + wa[i + 1] * xa.y + wa[i + 2] * xa.z + wa[i + 3] * xa.w;
          acc[t] += wb[i] * xb.x + wb[i + 1] * xb.y + wb[i + 2] * xb.z + wb[i + 3] * xb.w;
        }
      }
    }
    for (; c < cols; c += 32 * V) {
      float wa[V];
      load_vec(wr + c, wa);
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float* xt = x + size_t(t) * cols;
#pragma unroll
        for (int i = 0; i < V; i += 4) {
          const float4 xa = *reinterpret_cast<const float4*>(xt + c + i);
          acc[t] += wa[i] * xa.x + wa[i + 1] * xa.y + wa[i + 2] * xa.z + wa[i + 3] * xa.w;
        }
      }
    }
  } else {
    for (int c = lane; c < cols; c += 32) {
      const float wv = to_float(wr[c]);
#pragma unroll
      for (int t = 0; t < T; ++t) acc[t] += wv * x[size_t(t) * cols + c];
    }
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0) y[size_t(t) * rows + row] = s;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

cudaError_t Gemv(const void* w, WType wtype, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) IMP_DISPATCH_FAIL("GEMV shape (rows or cols <= 0)", rows <= 0 ? rows : cols);
  const dim3 grid((rows + kWarps - 1) / kWarps), block(kWarps * 32);
  DISPATCH_WTYPE(wtype, W, {
    const bool vec = aligned16(w) && aligned16(x) && cols % kVec<W> == 0;
    DISPATCH_ROWS(T, TR, {
      if (vec)
        GemvKernel<W, TR, true><<<grid, block, 0, stream>>>(static_cast<const W*>(w), rows, cols, x, y);
      else
        GemvKernel<W, TR, false><<<grid, block, 0, stream>>>(static_cast<const W*>(w), rows, cols, x, y);
    })
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::gemv
