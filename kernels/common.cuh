// What every kernel family shares and the host side may include (no device code here): the weight storage
// types, and the detail message a launcher leaves when it refuses a shape (its cudaError_t alone cannot say which
// value was unsupported).
#ifndef IMP_KERNELS_COMMON_CUH_
#define IMP_KERNELS_COMMON_CUH_

#include <cuda_runtime_api.h>

#include <cstdint>

// Marks the few inline helpers of the (host-includable) headers that device code calls too.
#ifdef __CUDACC__
#define IMP_HOST_DEVICE __host__ __device__
#else
#define IMP_HOST_DEVICE
#endif

namespace imp::kernels {

// Storage type of a weight matrix. Activations are always fp32.
enum class WType : int { F32 = 0, F16 = 1, BF16 = 2 };

inline int wtype_size(WType t) { return t == WType::F32 ? 4 : 2; }

// The calling thread's detail for the last launcher that returned cudaErrorInvalidValue because of a shape or type
// it does not support ("Unsupported head_dim: 48"); "" if none. Launchers set it; the host adds it to its error.
const char* last_error_detail();
void set_error_detail(const char* message);
void clear_error_detail();

}  // namespace imp::kernels

#endif  // IMP_KERNELS_COMMON_CUH_
