#include "norm.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "launch.cuh"

#include <algorithm>
#include <cstdint>

namespace imp::kernels::norm {

namespace {

__global__ void RMSNormKernel(const float* __restrict__ x, int x_stride, const float* __restrict__ scale, int n,
                              float eps, float* __restrict__ y, int y_stride) {
  pdl_wait();  // launched with launch_pdl: the input is the previous kernel's output
  pdl_trigger();
  const float* xr = x + size_t(blockIdx.x) * x_stride;
  float* yr = y + size_t(blockIdx.x) * y_stride;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  const float r = rsqrtf(block_sum(ss) / float(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * r * scale[i];
}

__global__ void AddRMSNormKernel(float* __restrict__ x, const float* __restrict__ branch,
                                 const float* __restrict__ scale, int n, float eps, float* __restrict__ y) {
  pdl_wait();  // launched with launch_pdl: the input is the previous kernel's output
  pdl_trigger();
  float* xr = x + size_t(blockIdx.x) * n;
  const float* br = branch + size_t(blockIdx.x) * n;
  float* yr = y + size_t(blockIdx.x) * n;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = xr[i] + br[i];
    xr[i] = v;
    ss += v * v;
  }
  const float r = rsqrtf(block_sum(ss) / float(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * r * scale[i];
}

// The same with float4 accesses and each thread's values kept in registers between the two passes: a decode step
// runs this 2L times on one row, so its latency (one round of loads, one reduction) is what counts. VPT float4s per
// thread; rows are 16-byte aligned and n % 4 == 0.
template <int VPT>
__global__ void AddRMSNormVecKernel(float* __restrict__ x, const float* __restrict__ branch,
                                    const float* __restrict__ scale, int n, float eps, float* __restrict__ y) {
  pdl_wait();  // launched with launch_pdl: the input is the previous kernel's output
  pdl_trigger();
  const int n4 = n / 4;
  float4* xr = reinterpret_cast<float4*>(x + size_t(blockIdx.x) * n);
  const float4* br = reinterpret_cast<const float4*>(branch + size_t(blockIdx.x) * n);
  const float4* sc = reinterpret_cast<const float4*>(scale);
  float4* yr = reinterpret_cast<float4*>(y + size_t(blockIdx.x) * n);
  float4 v[VPT];
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < n4) {
      const float4 a = xr[i], b = br[i];
      v[k] = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
      xr[i] = v[k];
      ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    }
  }
  const float r = rsqrtf(block_sum(ss) / float(n) + eps);
#pragma unroll
  for (int k = 0; k < VPT; ++k) {
    const int i = threadIdx.x + k * blockDim.x;
    if (i < n4) {
      const float4 s = sc[i];
      yr[i] = make_float4(v[k].x * r * s.x, v[k].y * r * s.y, v[k].z * r * s.z, v[k].w * r * s.w);
    }
  }
}

__global__ void GatedRMSNormKernel(const float* __restrict__ o, const float* __restrict__ z,
                                   const float* __restrict__ w, int n, float eps, float* __restrict__ y) {
  pdl_wait();  // launched with launch_pdl: the input is the previous kernel's output
  pdl_trigger();
  const size_t base = size_t(blockIdx.x) * n;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += o[base + i] * o[base + i];
  const float r = rsqrtf(block_sum(ss) / float(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) y[base + i] = w[i] * (o[base + i] * r) * siluf_(z[base + i]);
}

// Threads per row: a multiple of 32, enough for n without idling most of them.
int block_for(int n) { return n >= 1024 ? 512 : n >= 256 ? 256 : n > 64 ? 128 : 32; }

}  // namespace

cudaError_t RMSNorm(const float* x, int x_stride, const float* scale, int T, int n, float eps, float* y,
                    int y_stride, cudaStream_t stream) {
  if (T <= 0 || n <= 0) IMP_DISPATCH_FAIL("RMSNorm shape (T or n <= 0)", T <= 0 ? T : n);
  return launch_pdl(RMSNormKernel, T, block_for(n), 0, stream, x, x_stride, scale, n, eps, y, y_stride);
}

cudaError_t AddRMSNorm(float* x, const float* branch, const float* scale, int T, int n, float eps, float* y,
                       cudaStream_t stream) {
  if (T <= 0 || n <= 0) IMP_DISPATCH_FAIL("AddRMSNorm shape (T or n <= 0)", T <= 0 ? T : n);
  const bool aligned = ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(branch) |
                         reinterpret_cast<uintptr_t>(scale) | reinterpret_cast<uintptr_t>(y)) & 15) == 0;
  const int n4 = n / 4;
  if (aligned && n % 4 == 0 && n4 <= 4 * 1024) {
    const int threads = std::min(1024, (n4 + 31) / 32 * 32), vpt = (n4 + threads - 1) / threads;
    auto* kernel = vpt == 1 ? AddRMSNormVecKernel<1> : vpt == 2 ? AddRMSNormVecKernel<2> : AddRMSNormVecKernel<4>;
    return launch_pdl(kernel, T, threads, 0, stream, x, branch, scale, n, eps, y);
  }
  return launch_pdl(AddRMSNormKernel, T, block_for(n), 0, stream, x, branch, scale, n, eps, y);
}

cudaError_t GatedRMSNorm(const float* o, const float* z, const float* w, int n_rows, int n, float eps, float* y,
                         cudaStream_t stream) {
  if (n_rows <= 0 || n <= 0) IMP_DISPATCH_FAIL("GatedRMSNorm shape (rows or n <= 0)", n_rows <= 0 ? n_rows : n);
  return launch_pdl(GatedRMSNormKernel, n_rows, block_for(n), 0, stream, o, z, w, n, eps, y);
}

}  // namespace imp::kernels::norm
