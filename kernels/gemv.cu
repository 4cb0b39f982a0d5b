#include "gemv.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

namespace imp::kernels::gemv {

namespace {

constexpr int kWarps = 8;   // output rows per block
// 16-byte weight loads in flight per lane before the first is used: 4 for one row of x; with more rows the
// accumulators take the registers, so 2 keeps the occupancy.
template <int T>
constexpr int kUnroll = T == 1 ? 4 : 2;

// A 16-byte weight load that bypasses L1 (each weight byte is read once per call; x stays cached instead).
__device__ __forceinline__ uint4 load_weights16(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

template <typename W>
__device__ __forceinline__ void unpack16(const uint4& raw, float* out) {
  if constexpr (sizeof(W) == 4) {
    out[0] = __uint_as_float(raw.x);
    out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z);
    out[3] = __uint_as_float(raw.w);
  } else {
    const W* h = reinterpret_cast<const W*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = to_float(h[i]);
  }
}

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
    // kUnroll<T> 16-byte weight loads in flight per lane before their first use: a decode step is one stream of
    // weight reads, and HBM needs many bytes in flight per SM to run at its rate. Each lane still adds its
    // columns in ascending order, one row of x at a time, so a row's result does not depend on T.
    int c = lane * V;
    constexpr int U = kUnroll<T>;
    for (; c + (U - 1) * 32 * V < cols; c += U * 32 * V) {
      uint4 raw[U];
#pragma unroll
      for (int u = 0; u < U; ++u) raw[u] = load_weights16(wr + c + u * 32 * V);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float wu[V];
        unpack16<W>(raw[u], wu);
#pragma unroll
        for (int t = 0; t < T; ++t) {
          const float* xt = x + size_t(t) * cols + c + u * 32 * V;
#pragma unroll
          for (int i = 0; i < V; i += 4) {
            const float4 xa = *reinterpret_cast<const float4*>(xt + i);
            acc[t] += wu[i] * xa.x + wu[i + 1] * xa.y + wu[i + 2] * xa.z + wu[i + 3] * xa.w;
          }
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
