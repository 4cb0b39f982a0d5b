// Elementwise family: embedding gather, SwiGLU's silu(g) * u, row gather, fp32 -> F16/BF16 conversion (the
// activations fed to cuBLAS next to 16-bit weights).
//
//   Embed:      out (T, H) fp32 = table[tokens[t]] (V, H) in its stored type (a quantized table goes to
//               quant_gemv::EmbedRows); tokens: (T) int32 on the device
//   SiluMul:    g (n) = silu(g) * u
//   GatherRows: dst (n_rows, n) = src[rows[i]] (·, n); rows: (n_rows) int32 on the device
//   ConvertF32: hi (n) in `to` (F16 or BF16; round to nearest even) = x (n) fp32, and, when lo is not null,
//               lo (n) = the rounding of x - hi: hi + lo carries about twice the 16-bit type's precision
//   CopySlots:  for each span i of spans (n_spans, on the device): dst_i (n_i) = src_i + slot * n_i (n_i), i.e.
//               slot `slot` of a (slots, n_i) array; one launch for a rollback's every recurrent state
#ifndef IMP_KERNELS_ELEMENTWISE_CUH_
#define IMP_KERNELS_ELEMENTWISE_CUH_

#include "common.cuh"

#include <cstddef>

namespace imp::kernels::elementwise {

cudaError_t Embed(const void* table, WType wtype, int H, const int32_t* tokens, int T, float* out,
                  cudaStream_t stream);

cudaError_t SiluMul(float* g, const float* u, size_t n, cudaStream_t stream);

cudaError_t GatherRows(const float* src, const int32_t* rows, int n_rows, int n, float* dst, cudaStream_t stream);

cudaError_t ConvertF32(const float* x, size_t n, WType to, void* hi, void* lo, cudaStream_t stream);

struct CopySpan {
  float* dst = nullptr;
  const float* src = nullptr;  // slot 0 of (slots, n)
  size_t n = 0;                // floats per slot
};
// max_n: the largest n among the spans (sizes the grid).
cudaError_t CopySlots(const CopySpan* spans, int n_spans, size_t max_n, int slot, cudaStream_t stream);

}  // namespace imp::kernels::elementwise

#endif  // IMP_KERNELS_ELEMENTWISE_CUH_
