// The GEMV family's tensor-core path for BF16 weights (gemv_mma.cu). gemv::Gemv and GemvSegments take it when
// IMP_GEMV_MMA=1 (gemv.cu says why it is not the default); the tests call it directly. Shapes and the rounding of
// x are described in gemv_mma.cu.
#ifndef IMP_KERNELS_GEMV_MMA_CUH_
#define IMP_KERNELS_GEMV_MMA_CUH_

#include "gemv.cuh"

namespace imp::kernels::gemv {

// BF16 weights, cols a multiple of 32, W and x 16-byte aligned, a device of compute capability 8.0 or newer.
bool MmaApplies(WType wtype, int cols, const void* w, const float* x);

// out as validated by GemvSegments; T in 1..16.
cudaError_t GemvMma(const void* w, int cols, const float* x, int T, const Segments& out, cudaStream_t stream);

}  // namespace imp::kernels::gemv

#endif  // IMP_KERNELS_GEMV_MMA_CUH_
