// What every kernel family shares and the host side may include (no device code here): the weight storage
// types, and the detail message a launcher leaves when it refuses a shape (its cudaError_t alone cannot say which
// value was unsupported).
#ifndef IMP_KERNELS_COMMON_CUH_
#define IMP_KERNELS_COMMON_CUH_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

// Marks the few inline helpers of the (host-includable) headers that device code calls too.
#ifdef __CUDACC__
#define IMP_HOST_DEVICE __host__ __device__
#else
#define IMP_HOST_DEVICE
#endif

namespace imp::kernels {

// Storage type of a weight matrix. Activations are always fp32. The float types hold one value per element; the
// quantized ones hold ggml's blocks (layouts in quant_gemv.cuh): a row of `cols` values is cols / block blocks.
enum class WType : int { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_K = 4, Q5_K = 5, Q6_K = 6 };

inline bool wtype_is_quantized(WType t) {
  return t == WType::Q8_0 || t == WType::Q4_K || t == WType::Q5_K || t == WType::Q6_K;
}

// Values per block (1 for the float types) and bytes per block (the element size for the float types).
inline int wtype_block_values(WType t) { return t == WType::Q8_0 ? 32 : wtype_is_quantized(t) ? 256 : 1; }
inline int wtype_block_bytes(WType t) {
  switch (t) {
    case WType::F32: return 4;
    case WType::Q8_0: return 34;
    case WType::Q4_K: return 144;
    case WType::Q5_K: return 176;
    case WType::Q6_K: return 210;
    default: return 2;
  }
}

// Bytes of one row of `cols` values (cols a multiple of wtype_block_values(t)); what a matrix's size is made of.
inline size_t wtype_row_bytes(WType t, int cols) {
  return size_t(cols) / size_t(wtype_block_values(t)) * size_t(wtype_block_bytes(t));
}

// Bytes per element of the float types; 0 for the quantized ones, whose size is per row (wtype_row_bytes).
inline int wtype_size(WType t) { return wtype_is_quantized(t) ? 0 : wtype_block_bytes(t); }

// The calling thread's detail for the last launcher that returned cudaErrorInvalidValue because of a shape or type
// it does not support ("Unsupported head_dim: 48"); "" if none. Launchers set it; the host adds it to its error.
const char* last_error_detail();
void set_error_detail(const char* message);
void clear_error_detail();

}  // namespace imp::kernels

#endif  // IMP_KERNELS_COMMON_CUH_
