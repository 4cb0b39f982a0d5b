#include "norm.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

namespace imp::kernels::norm {

namespace {

__global__ void RMSNormKernel(const float* __restrict__ x, int x_stride, const float* __restrict__ scale, int n,
                              float eps, float* __restrict__ y, int y_stride) {
  const float* xr = x + size_t(blockIdx.x) * x_stride;
  float* yr = y + size_t(blockIdx.x) * y_stride;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  const float r = rsqrtf(block_sum(ss) / float(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * r * scale[i];
}

__global__ void AddRMSNormKernel(float* __restrict__ x, const float* __restrict__ branch,
                                 const float* __restrict__ scale, int n, float eps, float* __restrict__ y) {
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

__global__ void GatedRMSNormKernel(const float* __restrict__ o, const float* __restrict__ z,
                                   const float* __restrict__ w, int n, float eps, float* __restrict__ y) {
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
  RMSNormKernel<<<T, block_for(n), 0, stream>>>(x, x_stride, scale, n, eps, y, y_stride);
  return cudaGetLastError();
}

cudaError_t AddRMSNorm(float* x, const float* branch, const float* scale, int T, int n, float eps, float* y,
                       cudaStream_t stream) {
  if (T <= 0 || n <= 0) IMP_DISPATCH_FAIL("AddRMSNorm shape (T or n <= 0)", T <= 0 ? T : n);
  AddRMSNormKernel<<<T, block_for(n), 0, stream>>>(x, branch, scale, n, eps, y);
  return cudaGetLastError();
}

cudaError_t GatedRMSNorm(const float* o, const float* z, const float* w, int n_rows, int n, float eps, float* y,
                         cudaStream_t stream) {
  if (n_rows <= 0 || n <= 0) IMP_DISPATCH_FAIL("GatedRMSNorm shape (rows or n <= 0)", n_rows <= 0 ? n_rows : n);
  GatedRMSNormKernel<<<n_rows, block_for(n), 0, stream>>>(o, z, w, n, eps, y);
  return cudaGetLastError();
}

}  // namespace imp::kernels::norm
