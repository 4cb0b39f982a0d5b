// Random fill family: seeded weights for benchmark models built on the device (model/random_model.h).
//
//   FillUniform: dst[i] = scale * u_i, u_i uniform in [-1, 1) from a counter-based hash of (seed, i), stored as
//   wtype (F32, F16, BF16). n elements, contiguous. The same (seed, n) gives the same bytes on every device and
//   launch configuration, so a benchmark model is reproducible from its seed alone.
#ifndef IMP_KERNELS_RANDOM_FILL_CUH_
#define IMP_KERNELS_RANDOM_FILL_CUH_

#include "common.cuh"

#include <cstddef>
#include <cstdint>

namespace imp::kernels::random_fill {

cudaError_t FillUniform(void* dst, WType wtype, size_t n, uint64_t seed, float scale, cudaStream_t stream);

}  // namespace imp::kernels::random_fill

#endif  // IMP_KERNELS_RANDOM_FILL_CUH_
