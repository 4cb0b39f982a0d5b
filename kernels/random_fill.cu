#include "random_fill.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

namespace imp::kernels::random_fill {

namespace {

template <typename W>
__device__ __forceinline__ W from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename W>
__global__ void FillUniformKernel(W* __restrict__ dst, size_t n, uint64_t seed, float scale) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint64_t r = splitmix64(seed ^ splitmix64(i));
    const float u = float(int32_t(uint32_t(r >> 32))) * (1.0f / 2147483648.0f);  // [-1, 1)
    dst[i] = from_float<W>(scale * u);
  }
}

}  // namespace

cudaError_t FillUniform(void* dst, WType wtype, size_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const int block = 256;
  const int grid = int(std::min<size_t>((n + block - 1) / block, 132 * 16));
  DISPATCH_WTYPE(wtype, W, {
    FillUniformKernel<W><<<grid, block, 0, stream>>>(static_cast<W*>(dst), n, seed, scale);
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::random_fill
