#include "gemv_fp8.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

#include <cuda_fp8.h>

namespace imp::kernels::gemv_fp8 {

namespace {

// ---- QuantiseRows: one block per row ------------------------------------------------------------------------

constexpr int kQuantThreads = 256;

template <typename W>
__global__ void __launch_bounds__(kQuantThreads) QuantiseKernel(const W* __restrict__ w, int cols,
                                                                uint8_t* __restrict__ q, float* __restrict__ scales) {
  const size_t row = blockIdx.x;
  const W* wr = w + row * cols;
  uint8_t* qr = q + row * cols;
  float amax = 0.0f;
  for (int c = threadIdx.x; c < cols; c += kQuantThreads) amax = fmaxf(amax, fabsf(to_float(wr[c])));
  amax = block_max(amax);
  const float s = amax / kE4m3Max;
  const float scale = s > 0.0f ? s : 1.0f;  // an all-zero row (or one too small to scale) stores zeros
  for (int c = threadIdx.x; c < cols; c += kQuantThreads)
    qr[c] = __nv_cvt_float_to_fp8(to_float(wr[c]) / scale, __NV_SATFINITE, __NV_E4M3);
  if (threadIdx.x == 0) scales[row] = scale;
}

// ---- Gemv -----------------------------------------------------------------------------------------------------

constexpr int kWarps = 8;  // warps per block: kWarps * kRowsPerWarp weight rows per block

// The 16-byte path decodes E4M3 with integer operations instead of conversion instructions (fp8 -> f16 -> f32 is
// 1.5 conversions per weight, and conversions issue at a fraction of the FMA rate: at one byte per weight they,
// not memory, would bound the kernel). Byte k of u, as fp32 times 2^-120: E4M3's sign, 4 exponent bits and 3
// mantissa bits land on fp32's sign, low 4 exponent bits and top 3 mantissa bits. Both formats have an implicit
// leading 1 for a non-zero exponent field and are subnormal below it, so every code maps exactly (E4M3 subnormals
// onto fp32 subnormals, which the FMAs take at full rate since the kernels do not flush denormals).
template <int k>
__device__ __forceinline__ float e4m3_times_2pow_minus120(uint32_t u) {
  const int32_t top = int32_t(u << (24 - 8 * k));  // byte k in bits 24..31
  return __int_as_float((top >> 4) & int32_t(0x87F00000u));  // arithmetic shift: bit 31 keeps the sign
}

// To keep the products of those scaled weights clear of fp32's subnormal range, the 16-byte path multiplies x by
// 2^64 as it loads it; every product and partial sum is then exactly 2^-56 times its unscaled value (powers of
// two commute with rounding away from the subnormal and overflow ranges: |x| < 2^64, and terms below 2^-61 x the
// smallest weight are negligible), and the result is multiplied back by 2^56.
constexpr float kXScale = 0x1p64f;
constexpr float kVecUnscale = 0x1p56f;

__device__ __forceinline__ uint32_t word(const uint4& v, int j) { return j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w; }

template <int T, bool VEC>
__global__ void __launch_bounds__(kWarps * 32) GemvKernel(const uint8_t* __restrict__ q,
                                                          const float* __restrict__ scales, int rows, int cols,
                                                          const float* __restrict__ x, float* __restrict__ y) {
  constexpr int R = kRowsPerWarp;
  const int lane = threadIdx.x & 31;
  const int row0 = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * R;
  if (row0 >= rows) return;
  const uint8_t* wr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) wr[r] = q + size_t(min(row0 + r, rows - 1)) * cols;  // past the end: re-read, not stored
  float acc[R][T];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;

  if constexpr (VEC) {
#pragma unroll 2  // two steps' loads in flight, 8 x 16 bytes per lane (and, unlike 1, no register spill at T = 4)
    for (int c = lane * 16; c < cols; c += 32 * 16) {
      uint4 raw[R];  // the R weight loads are in flight together
#pragma unroll
      for (int r = 0; r < R; ++r) raw[r] = load_weights16(wr[r] + c);
#pragma unroll
      for (int j = 0; j < 4; ++j) {  // 32-bit word j: columns c + 4j .. c + 4j + 3
        float wf[R][4];
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint32_t u = word(raw[r], j);
          wf[r][0] = e4m3_times_2pow_minus120<0>(u);
          wf[r][1] = e4m3_times_2pow_minus120<1>(u);
          wf[r][2] = e4m3_times_2pow_minus120<2>(u);
          wf[r][3] = e4m3_times_2pow_minus120<3>(u);
        }
#pragma unroll
        for (int t = 0; t < T; ++t) {
          float4 xv = *reinterpret_cast<const float4*>(x + size_t(t) * cols + c + 4 * j);
          xv.x *= kXScale, xv.y *= kXScale, xv.z *= kXScale, xv.w *= kXScale;
#pragma unroll
          for (int r = 0; r < R; ++r)
            acc[r][t] += wf[r][0] * xv.x + wf[r][1] * xv.y + wf[r][2] * xv.z + wf[r][3] * xv.w;
        }
      }
    }
  } else {
    for (int c = lane; c < cols; c += 32) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        __nv_fp8_e4m3 code;
        code.__x = wr[r][c];
        const float wv = float(code);
#pragma unroll
        for (int t = 0; t < T; ++t) acc[r][t] += wv * x[size_t(t) * cols + c];
      }
    }
  }

  constexpr float unscale = VEC ? kVecUnscale : 1.0f;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = row0 + r;
    const float scale = scales[min(row, rows - 1)];
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float s = warp_sum(acc[r][t]);
      // Lanes take turns storing; (s * 2^56) is exact, so only the multiplication by the scale rounds.
      if (lane == ((r * T + t) & 31) && row < rows) y[size_t(t) * rows + row] = s * unscale * scale;
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

cudaError_t QuantiseRows(const void* w, WType wtype, int rows, int cols, uint8_t* q, float* scales,
                         cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) IMP_DISPATCH_FAIL("FP8 quantise shape (rows or cols <= 0)", rows <= 0 ? rows : cols);
  DISPATCH_WTYPE(wtype, W, {
    QuantiseKernel<W><<<rows, kQuantThreads, 0, stream>>>(static_cast<const W*>(w), cols, q, scales);
  })
  return cudaGetLastError();
}

cudaError_t Gemv(const uint8_t* q, const float* scales, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) IMP_DISPATCH_FAIL("FP8 GEMV shape (rows or cols <= 0)", rows <= 0 ? rows : cols);
  constexpr int rows_per_block = kWarps * kRowsPerWarp;
  const dim3 grid((rows + rows_per_block - 1) / rows_per_block), block(kWarps * 32);
  const bool vec = aligned16(q) && aligned16(x) && cols % 16 == 0;
  DISPATCH_ROWS(T, TR, {
    if (vec)
      GemvKernel<TR, true><<<grid, block, 0, stream>>>(q, scales, rows, cols, x, y);
    else
      GemvKernel<TR, false><<<grid, block, 0, stream>>>(q, scales, rows, cols, x, y);
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::gemv_fp8
