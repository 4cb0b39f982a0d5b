// Device helpers shared by the kernel families (CUDA sources only): warp and block reductions, weight-element
// conversion, and the warp-wide dot product of one weight row with fp32 activations using 16-byte loads.
#ifndef IMP_KERNELS_DEVICE_UTILS_CUH_
#define IMP_KERNELS_DEVICE_UTILS_CUH_

#ifndef __CUDACC__
#error "device_utils.cuh is for CUDA sources only"
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace imp::kernels {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024). Every thread gets the result. Uses 33 floats
// of static shared memory; safe to call repeatedly.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[33];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < n_warps ? part[lane] : 0.0f;
    s = warp_sum(s);
    if (lane == 0) part[32] = s;
  }
  __syncthreads();
  return part[32];
}

__device__ __forceinline__ float block_max(float v) {
  __shared__ float part[33];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < n_warps ? part[lane] : -INFINITY;
    s = warp_max(s);
    if (lane == 0) part[32] = s;
  }
  __syncthreads();
  return part[32];
}

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

__device__ __forceinline__ float sigmoidf_(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float siluf_(float x) { return x / (1.0f + expf(-x)); }
// PyTorch's softplus (beta 1, threshold 20).
__device__ __forceinline__ float softplusf_(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// Elements of W in one 16-byte load.
template <typename W>
constexpr int kVec = 16 / int(sizeof(W));

// Converts the 16 bytes at p (kVec<W> elements of W) to fp32.
template <typename W>
__device__ __forceinline__ void load_vec(const W* p, float* out) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
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

// The warp's dot product of a weight row w (n elements) with x (n fp32), returned to every lane. vec: w and x are
// 16-byte aligned and n is a multiple of kVec<W> (then every access is a 16-byte load).
template <typename W>
__device__ __forceinline__ float warp_dot(const W* __restrict__ w, const float* __restrict__ x, int n, bool vec) {
  const int lane = threadIdx.x & 31;
  float acc = 0.0f;
  if (vec) {
    constexpr int V = kVec<W>;
    for (int c = lane * V; c < n; c += 32 * V) {
      float wf[V];
      load_vec(w + c, wf);
#pragma unroll
      for (int i = 0; i < V; i += 4) {
        const float4 xv = *reinterpret_cast<const float4*>(x + c + i);
        acc += wf[i] * xv.x + wf[i + 1] * xv.y + wf[i + 2] * xv.z + wf[i + 3] * xv.w;
      }
    }
  } else {
    for (int c = lane; c < n; c += 32) acc += to_float(w[c]) * x[c];
  }
  return warp_sum(acc);
}

// A 16-byte weight load that bypasses L1: a GEMV reads each weight byte once per call, so L1 is left to x.
__device__ __forceinline__ uint4 load_weights16(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// splitmix64: a full-period mix of a 64-bit counter, enough for benchmark weights that only need to look random.
__device__ __forceinline__ uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace imp::kernels

#endif  // IMP_KERNELS_DEVICE_UTILS_CUH_
