// FP8 GEMV family: a weight matrix stored as FP8 E4M3 with one fp32 scale per row, and the GEMV that reads it.
// The MTP draft head uses it for the lm_head (MtpBatch::low_precision_head): half the bytes of BF16 per draft
// step, and verification keeps the output exact whatever the draft head computes.
//
//   QuantiseRows: W (rows, cols) in its stored type (F32, F16, BF16)
//                 -> q (rows, cols) E4M3 bits, scales (rows) fp32, with
//                    scale_r = max_c |W[r][c]| / 448 (1 for an all-zero row; 448 = the largest finite E4M3)
//                    q[r][c] = E4M3(W[r][c] / scale_r), round to nearest even, saturating to +-448
//                 W / scale is one IEEE fp32 division, so a CPU loop doing the same gets the same bytes.
//   Gemv:         y (T, rows) fp32 = x (T, cols) fp32 · (scale_r · dequant(q_r))^T, T in 1..16, fp32 accumulation.
//
// Gemv reads each weight row once per call whatever T is. Each warp takes kRowsPerWarp consecutive rows and each
// lane 16 bytes (16 weights) of each of them per step, so every fp32 activation load (4 bytes per weight) serves
// four weight rows. The 16-byte path needs q and x 16-byte aligned and cols a multiple of 16; otherwise a scalar
// path. Codes 0x7F/0xFF (NaN) are never written by QuantiseRows; Gemv does not check for them.
#ifndef IMP_KERNELS_GEMV_FP8_CUH_
#define IMP_KERNELS_GEMV_FP8_CUH_

#include "common.cuh"

namespace imp::kernels::gemv_fp8 {

constexpr int kMaxRows = 16;          // activation rows T per call
constexpr float kE4m3Max = 448.0f;    // largest finite E4M3 value
constexpr int kRowsPerWarp = 4;       // weight rows each warp computes

// Returns cudaErrorInvalidValue (detail: last_error_detail()) for a weight type other than F32/F16/BF16 or a
// non-positive shape.
cudaError_t QuantiseRows(const void* w, WType wtype, int rows, int cols, uint8_t* q, float* scales,
                         cudaStream_t stream);

// Returns cudaErrorInvalidValue for T outside 1..16 or a non-positive shape (detail: last_error_detail()).
cudaError_t Gemv(const uint8_t* q, const float* scales, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream);

}  // namespace imp::kernels::gemv_fp8

#endif  // IMP_KERNELS_GEMV_FP8_CUH_
