// GEMV family: y = x W^T for a few activation rows (decode, MTP steps, speculative verify).
//
//   W: (rows, cols) row-major in its stored type (F32, F16, BF16)
//   x: (T, cols) fp32, row-major, T in 1..16
//   y: (T, rows) fp32, row-major
//
// Two warps per output row for T = 1 (each takes every other 16-byte column run), four rows per pair of warps for
// T = 2..6 and eight from T = 7, so that each x load serves several weight rows; each lane reads 16 bytes of a
// weight row at a time and applies them to all T activation rows, so W is read once per call whatever T is.
// fp32 accumulation. 16-byte loads are used when W and x are 16-byte aligned and cols is a multiple of 8 (4 for
// F32); otherwise a scalar path. With IMP_GEMV_MMA=1 in the environment, BF16 weights with cols a multiple of 32
// take the tensor-core kernel instead (gemv_mma.cu: x split into bf16 hi + lo, T rows cost about what one does;
// slower than this one at T = 1, see gemv.cu).
// Either way a row's result does not depend on T (a verify row equals the same row decoded alone, bit for bit).
#ifndef IMP_KERNELS_GEMV_CUH_
#define IMP_KERNELS_GEMV_CUH_

#include "common.cuh"

namespace imp::kernels::gemv {

constexpr int kMaxRows = 16;

// Returns cudaErrorInvalidValue for T outside 1..16 (detail: last_error_detail()).
cudaError_t Gemv(const void* w, WType wtype, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream);

// Several matrices that lie back to back in memory (same dtype and cols) and read the same x, as one launch:
// segment s is rows [end[s-1], end[s]) of the stacked matrix (end[-1] = 0) and goes to y[s], (T, its rows).
// Each output equals a Gemv of its own matrix (bit for bit on the CUDA-core kernel; the tensor-core kernel splits
// the columns by the launch's shape, so there the partial sums may be grouped differently); one launch
// instead of several spares the launch gaps and the small matrices' half-empty waves (a decode step's b and a
// projections are 32 rows each).
constexpr int kMaxSegments = 4;
struct Segments {
  float* y[kMaxSegments] = {};
  int end[kMaxSegments] = {};
  int n = 0;
};
cudaError_t GemvSegments(const void* w, WType wtype, int cols, const float* x, int T, const Segments& out,
                         cudaStream_t stream);

}  // namespace imp::kernels::gemv

#endif  // IMP_KERNELS_GEMV_CUH_
