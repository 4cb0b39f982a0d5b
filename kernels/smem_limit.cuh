// Host helper for launchers whose kernels need more dynamic shared memory than the default 48 KiB: checks the
// device's opt-in limit and raises the kernel's limit, or refuses with "Unsupported <what>: <bytes>".
#ifndef IMP_KERNELS_SMEM_LIMIT_CUH_
#define IMP_KERNELS_SMEM_LIMIT_CUH_

#include "dispatch.cuh"

#include <cstddef>

namespace imp::kernels {

// Lets kernel (a __global__ function) launch with `bytes` of dynamic shared memory on the current device.
inline cudaError_t allow_dynamic_smem(const void* kernel, size_t bytes, const char* what) {
  int device = 0, max_optin = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return e;
  e = cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return e;
  if (bytes > size_t(max_optin)) IMP_DISPATCH_FAIL(what, bytes);
  if (bytes > 48 * 1024) return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
  return cudaSuccess;
}

}  // namespace imp::kernels

#endif  // IMP_KERNELS_SMEM_LIMIT_CUH_
