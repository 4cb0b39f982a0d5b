// Quantized-weight family: weight matrices kept on the device in ggml's GGUF blocks (WType Q8_0, Q4_K, Q5_K,
// Q6_K), multiplied in place for a few activation rows and dequantised for the rest.
//
// Block layouts (ggml-common.h; little-endian, packed). A row of `cols` values is cols / block whole blocks and
// rows follow each other, so a row is wtype_row_bytes(type, cols) bytes:
//   Q8_0 (32 values, 34 bytes):  f16 d; int8 qs[32]                              value i = d * qs[i]
//   Q4_K (256 values, 144 bytes): f16 d, dmin; u8 scales[12]; u8 qs[128]
//        sub-block s (values 32s .. 32s+31) has a 6-bit scale sc_s and min m_s packed in scales (ggml's
//        get_scale_min_k4); value 64j + l (l < 32) is the low nibble of qs[32j + l], value 64j + 32 + l its high
//        nibble; value = (d * sc_s) * q - dmin * m_s
//   Q5_K (256 values, 176 bytes): f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
//        as Q4_K, with bit s of qh[l] as the fifth bit (+16) of value 32s + l
//   Q6_K (256 values, 210 bytes): u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
//        value 128h + 32q + l (h < 2, q < 4, l < 32): low 4 bits from ql[64h + 32(q % 2) + l] (the low nibble
//        for q < 2, the high one for q >= 2), high 2 bits from qh[32h + l] >> 2q;
//        value = (d * scales[8h + 2q + l / 16]) * (q6 - 32)
//
//   Gemv:         y (T, rows) fp32 = x (T, cols) fp32 @ W^T, T in 1..16; W (rows, cols) quantized
//   Dequantize:   out (rows, cols) in `to` (F16 or BF16, round to nearest even) = W. The prefill matmul multiplies
//                 that copy with cuBLAS.
//   EmbedRows:    out (n, cols) fp32 = W[ids[i]]; ids: (n) int32 on the device (a quantized token embedding;
//                 elementwise::Embed routes here)
//   ExpertSwiGLU, ExpertDown: moe.cuh's routed experts for quantized expert matrices, same arguments and
//                 results (moe::ExpertSwiGLU / ExpertDown route here)
//   FillRandomBlocks: random, valid blocks for benchmarks with random weights (below)
//
// Values: Dequantize and EmbedRows compute exactly the CPU's dequantised fp32 values (lib/gguf/quants.cpp: f16
// scales, fp32 products in the same order). Gemv dequantises with a fused multiply-add (one rounding fewer for
// the K-quants' d*sc*q - dmin*m) and accumulates in fp32.
//
// GEMV scheme: each warp computes R output rows (R = 2 for T = 1, else 4) and walks them in chunks of 256 values
// (one K-quant block, eight Q8_0 blocks). Per chunk each lane takes 8 values as two runs of 4 consecutive values,
// so the warp's fp32 activation reads are coalesced 16-byte loads, and every activation value loaded serves all
// R rows. Weight bytes are read once, with the widest loads the layout allows: a 16-byte header (shared by the
// lanes of a block) and 4-byte quants for Q4_K / Q5_K, whose blocks are 16-byte aligned; 2-byte loads for Q8_0
// and Q6_K, whose 34- and 210-byte blocks are only 2-byte aligned. Up to four chunks per row are loaded before
// the first is used, to keep enough bytes in flight.
//
// Requirements, else cudaErrorInvalidValue with last_error_detail(): cols a multiple of the block (32 for Q8_0,
// 256 for the K-quants); W 16-byte aligned for Q4_K / Q5_K and 2-byte aligned for Q8_0 / Q6_K (the device arena
// places every matrix at a 256-byte boundary; a slice of rows of a Q4_K / Q5_K matrix is aligned too, its rows
// being multiples of 16 bytes); x and the fp32 / 16-bit outputs 16-byte aligned.
#ifndef IMP_KERNELS_QUANT_GEMV_CUH_
#define IMP_KERNELS_QUANT_GEMV_CUH_

#include "common.cuh"

#include <cstddef>

namespace imp::kernels::quant_gemv {

constexpr int kMaxRows = 16;

cudaError_t Gemv(const void* w, WType wtype, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream);

cudaError_t Dequantize(const void* w, WType wtype, int rows, int cols, WType to, void* out, cudaStream_t stream);

cudaError_t EmbedRows(const void* table, WType wtype, int cols, const int32_t* ids, int n, float* out,
                      cudaStream_t stream);

cudaError_t ExpertSwiGLU(const void* const* gate, const void* const* up, WType wtype, int Fe, int H,
                         const float* x, const int32_t* idx, int T, int k, float* act, cudaStream_t stream);

cudaError_t ExpertDown(const void* const* down, WType wtype, int H, int Fe, const float* act, const int32_t* idx,
                       int n_slots, float* out, cudaStream_t stream);

// Writes n_rows random rows of `cols` values in the quantized `type` to blocks (n_rows * wtype_row_bytes bytes,
// 2-byte aligned): random quants, and f16 scales chosen so that the dequantised values spread over about
// [-scale, scale] (mean about 0, RMS about 0.55 * scale; quant_random.cu has the recipe per type). The same
// seed gives the same bytes. scale in [1e-3, 65504]: the f16 scale fields keep some precision and the values stay
// finite in fp16, as the prefill path needs.
cudaError_t FillRandomBlocks(WType type, void* blocks, size_t n_rows, int cols, uint64_t seed, float scale,
                             cudaStream_t stream);

}  // namespace imp::kernels::quant_gemv

#endif  // IMP_KERNELS_QUANT_GEMV_CUH_
