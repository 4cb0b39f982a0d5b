// Norm family, all fp32, one block per row.
//
//   RMSNorm:       y[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * scale          x, y: (T, n) with row strides
//                  scale holds 1 + w for the zero-centred norms (folded in when the weights are bound)
//   AddRMSNorm:    x[t] += branch[t]; y[t] = RMSNorm(x[t])                   the residual add fused with the
//                  next norm; x, branch, y: (T, n) contiguous
//   GatedRMSNorm:  y[r] = w * (o[r] * rsqrt(mean(o[r]^2) + eps)) * silu(z[r])  o, z, y: (n_rows, n); per Gated
//                  DeltaNet value head (n = dv, n_rows = T * HV), not zero-centred
#ifndef IMP_KERNELS_NORM_CUH_
#define IMP_KERNELS_NORM_CUH_

#include "common.cuh"

namespace imp::kernels::norm {

cudaError_t RMSNorm(const float* x, int x_stride, const float* scale, int T, int n, float eps, float* y,
                    int y_stride, cudaStream_t stream);

cudaError_t AddRMSNorm(float* x, const float* branch, const float* scale, int T, int n, float eps, float* y,
                       cudaStream_t stream);

cudaError_t GatedRMSNorm(const float* o, const float* z, const float* w, int n_rows, int n, float eps, float* y,
                         cudaStream_t stream);

}  // namespace imp::kernels::norm

#endif  // IMP_KERNELS_NORM_CUH_
