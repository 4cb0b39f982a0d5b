#include "quant_gemv.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "quant_blocks.cuh"

#include <algorithm>
#include <type_traits>

namespace imp::kernels::quant_gemv {

namespace {

using quant::dot_rows;
using quant::kChunk;

constexpr int kWarps = 4;  // warps per block of the GEMV and expert kernels

// Rows per warp and chunks in flight per row, by activation rows T: more rows share each activation load as T
// grows; more chunks per row keep bytes in flight when there is little arithmetic per byte.
template <int T>
constexpr int kRowsPerWarp = T == 1 ? 2 : 4;
template <int T>
constexpr int kUnroll = T == 1 ? 4 : T <= 8 ? 2 : 1;

// Grid (ceil(rows / (kWarps * R))). No __launch_bounds__: with it ptxas spilled a few bytes in some instantiations
// while far below the register limit.
template <class F, int T>
__global__ void GemvKernel(const uint8_t* __restrict__ w, size_t row_bytes, int rows,
                                                          int cols, const float* __restrict__ x, float* __restrict__ y) {
  constexpr int R = kRowsPerWarp<T>;
  const int lane = threadIdx.x & 31;
  const int row0 = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * R;
  if (row0 >= rows) return;
  const uint8_t* rp[R];
#pragma unroll
  for (int r = 0; r < R; ++r) rp[r] = w + size_t(min(row0 + r, rows - 1)) * row_bytes;  // a repeated last row
  float acc[R][T];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;
  dot_rows<F, T, R, kUnroll<T>>(rp, x, size_t(cols), cols, acc);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float s = warp_sum(acc[r][t]);
      if (lane == 0 && row0 + r < rows) y[size_t(t) * rows + row0 + r] = s;
    }
}

// One warp per (row, chunk), grid-stride.
template <class F, typename O>
__global__ void DequantizeKernel(const uint8_t* __restrict__ w, size_t row_bytes, int rows, int cols,
                                 O* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int n_chunks = (cols + kChunk - 1) / kChunk;
  const size_t units = size_t(rows) * n_chunks;
  const size_t step = size_t(gridDim.x) * (blockDim.x >> 5);
  for (size_t u = size_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5); u < units; u += step) {
    const int row = int(u / n_chunks), c = int(u % n_chunks);
    float v[8];
    F::template dequant<true>(F::load(w + size_t(row) * row_bytes, c, lane, cols), lane, v);
#pragma unroll
    for (int g = 0; g < 2; ++g) {
      const int off = c * kChunk + F::group_offset(lane, g);
      if (off >= cols) continue;
      union {
        O h[4];
        uint2 u;
      } pack;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if constexpr (std::is_same_v<O, __half>) pack.h[i] = __float2half_rn(v[4 * g + i]);
        else pack.h[i] = __float2bfloat16_rn(v[4 * g + i]);
      }
      *reinterpret_cast<uint2*>(out + size_t(row) * cols + off) = pack.u;
    }
  }
}

// Grid (x, n): the warps of the x blocks of row i stride over its chunks.
template <class F>
__global__ void __launch_bounds__(kWarps * 32) EmbedRowsKernel(const uint8_t* __restrict__ table, size_t row_bytes,
                                                               int cols, const int32_t* __restrict__ ids,
                                                               float* __restrict__ out) {
  const int lane = threadIdx.x & 31, i = blockIdx.y;
  const int n_chunks = (cols + kChunk - 1) / kChunk;
  const uint8_t* row = table + size_t(ids[i]) * row_bytes;
  for (int c = blockIdx.x * kWarps + (threadIdx.x >> 5); c < n_chunks; c += gridDim.x * kWarps) {
    float v[8];
    F::template dequant<true>(F::load(row, c, lane, cols), lane, v);
#pragma unroll
    for (int g = 0; g < 2; ++g) {
      const int off = c * kChunk + F::group_offset(lane, g);
      if (off < cols)
        *reinterpret_cast<float4*>(out + size_t(i) * cols + off) = make_float4(v[4 * g], v[4 * g + 1], v[4 * g + 2], v[4 * g + 3]);
    }
  }
}

// Grid (ceil(Fe / kWarps), T*k): one warp per (expert row f, slot), gate and up rows together (R = 2).
template <class F>
__global__ void __launch_bounds__(kWarps * 32) ExpertSwiGLUKernel(const void* const* __restrict__ gate,
                                                                  const void* const* __restrict__ up, size_t row_bytes,
                                                                  int Fe, int H, const float* __restrict__ x,
                                                                  const int32_t* __restrict__ idx, int k,
                                                                  float* __restrict__ act) {
  const int f = blockIdx.x * kWarps + (threadIdx.x >> 5), slot = blockIdx.y;
  if (f >= Fe) return;
  const int e = idx[slot];
  const uint8_t* rp[2] = {static_cast<const uint8_t*>(gate[e]) + size_t(f) * row_bytes,
                          static_cast<const uint8_t*>(up[e]) + size_t(f) * row_bytes};
  float acc[2][1] = {{0.0f}, {0.0f}};
  dot_rows<F, 1, 2, 4>(rp, x + size_t(slot / k) * H, size_t(H), H, acc);
  const float g = warp_sum(acc[0][0]), u = warp_sum(acc[1][0]);
  if ((threadIdx.x & 31) == 0) act[size_t(slot) * Fe + f] = siluf_(g) * u;
}

// Grid (ceil(H / (kWarps * 2)), n_slots): one warp per two output rows of a slot.
template <class F>
__global__ void __launch_bounds__(kWarps * 32) ExpertDownKernel(const void* const* __restrict__ down, size_t row_bytes,
                                                                int H, int Fe, const float* __restrict__ act,
                                                                const int32_t* __restrict__ idx,
                                                                float* __restrict__ out) {
  const int r0 = 2 * (blockIdx.x * kWarps + (threadIdx.x >> 5)), slot = blockIdx.y;
  if (r0 >= H) return;
  const uint8_t* base = static_cast<const uint8_t*>(down[idx[slot]]);
  const uint8_t* rp[2] = {base + size_t(r0) * row_bytes, base + size_t(min(r0 + 1, H - 1)) * row_bytes};
  float acc[2][1] = {{0.0f}, {0.0f}};
  dot_rows<F, 1, 2, 4>(rp, act + size_t(slot) * Fe, size_t(Fe), Fe, acc);
  const float s0 = warp_sum(acc[0][0]), s1 = warp_sum(acc[1][0]);
  if ((threadIdx.x & 31) == 0) {
    out[size_t(slot) * H + r0] = s0;
    if (r0 + 1 < H) out[size_t(slot) * H + r0 + 1] = s1;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// The weight alignment the loads need: Q4_K / Q5_K read their blocks with 16-byte loads (every row is a multiple
// of 16 bytes, so a matrix's rows are all aligned if its start is); Q8_0 and Q6_K only 2-byte loads.
cudaError_t check_weights(WType wtype, const void* w) {
  const uintptr_t need = wtype == WType::Q4_K || wtype == WType::Q5_K ? 16 : 2;
  if (reinterpret_cast<uintptr_t>(w) % need != 0)
    IMP_DISPATCH_FAIL("quantized weight address alignment (16 bytes for Q4_K/Q5_K, 2 for Q8_0/Q6_K), offset",
                      reinterpret_cast<uintptr_t>(w) % need);
  return cudaSuccess;
}

// The checks every launcher shares: a quantized type and rows of whole blocks.
cudaError_t check_shape(WType wtype, int rows, int cols) {
  if (!wtype_is_quantized(wtype)) IMP_DISPATCH_FAIL("quantized weight type", int(wtype));
  if (rows <= 0 || cols <= 0) IMP_DISPATCH_FAIL("quantized matrix shape (rows or cols <= 0)", rows <= 0 ? rows : cols);
  if (cols % wtype_block_values(wtype) != 0)
    IMP_DISPATCH_FAIL("quantized matrix cols (a multiple of the block: 32 for Q8_0, 256 for Q4_K/Q5_K/Q6_K)", cols);
  return cudaSuccess;
}

}  // namespace

cudaError_t Gemv(const void* w, WType wtype, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream) {
  if (cudaError_t e = check_shape(wtype, rows, cols); e != cudaSuccess) return e;
  if (cudaError_t e = check_weights(wtype, w); e != cudaSuccess) return e;
  if (!aligned16(x)) IMP_DISPATCH_FAIL("GEMV activation address (16-byte aligned), offset", reinterpret_cast<uintptr_t>(x) & 15);
  const size_t row_bytes = wtype_row_bytes(wtype, cols);
  DISPATCH_QTYPE(wtype, F, {
    DISPATCH_ROWS(T, TR, {
      const int per_block = kWarps * kRowsPerWarp<TR>;
      GemvKernel<F, TR><<<(rows + per_block - 1) / per_block, kWarps * 32, 0, stream>>>(
          static_cast<const uint8_t*>(w), row_bytes, rows, cols, x, y);
    })
  })
  return cudaGetLastError();
}

cudaError_t Dequantize(const void* w, WType wtype, int rows, int cols, WType to, void* out, cudaStream_t stream) {
  if (cudaError_t e = check_shape(wtype, rows, cols); e != cudaSuccess) return e;
  if (cudaError_t e = check_weights(wtype, w); e != cudaSuccess) return e;
  if (!aligned16(out)) IMP_DISPATCH_FAIL("dequantised matrix address (16-byte aligned), offset", reinterpret_cast<uintptr_t>(out) & 15);
  const size_t row_bytes = wtype_row_bytes(wtype, cols);
  const size_t units = size_t(rows) * ((cols + kChunk - 1) / kChunk);  // one warp each
  const unsigned grid = unsigned(std::min<size_t>((units + 7) / 8, 16384));
  const auto* wb = static_cast<const uint8_t*>(w);
  DISPATCH_QTYPE(wtype, F, {
    switch (to) {
      case WType::F16:
        DequantizeKernel<F, __half><<<grid, 256, 0, stream>>>(wb, row_bytes, rows, cols, static_cast<__half*>(out));
        break;
      case WType::BF16:
        DequantizeKernel<F, __nv_bfloat16><<<grid, 256, 0, stream>>>(wb, row_bytes, rows, cols,
                                                                     static_cast<__nv_bfloat16*>(out));
        break;
      default: IMP_DISPATCH_FAIL("dequantisation target type (F16 or BF16)", int(to));
    }
  })
  return cudaGetLastError();
}

cudaError_t EmbedRows(const void* table, WType wtype, int cols, const int32_t* ids, int n, float* out,
                      cudaStream_t stream) {
  if (cudaError_t e = check_shape(wtype, n, cols); e != cudaSuccess) return e;
  if (cudaError_t e = check_weights(wtype, table); e != cudaSuccess) return e;
  if (!aligned16(out)) IMP_DISPATCH_FAIL("embedding output address (16-byte aligned), offset", reinterpret_cast<uintptr_t>(out) & 15);
  if (n > 65535) IMP_DISPATCH_FAIL("embedding rows per call (<= 65535)", n);
  const int n_chunks = (cols + kChunk - 1) / kChunk;
  const dim3 grid(std::min((n_chunks + kWarps - 1) / kWarps, 64), n);
  DISPATCH_QTYPE(wtype, F, {
    EmbedRowsKernel<F><<<grid, kWarps * 32, 0, stream>>>(static_cast<const uint8_t*>(table),
                                                          wtype_row_bytes(wtype, cols), cols, ids, out);
  })
  return cudaGetLastError();
}

// The pointer tables are device arrays; every expert matrix is 16-byte aligned (the host places each at a
// 256-byte boundary), which is not checked here.
cudaError_t ExpertSwiGLU(const void* const* gate, const void* const* up, WType wtype, int Fe, int H,
                         const float* x, const int32_t* idx, int T, int k, float* act, cudaStream_t stream) {
  if (cudaError_t e = check_shape(wtype, Fe, H); e != cudaSuccess) return e;
  if (!aligned16(x)) IMP_DISPATCH_FAIL("expert activation address (16-byte aligned), offset", reinterpret_cast<uintptr_t>(x) & 15);
  if (T <= 0) return cudaSuccess;
  const dim3 grid((Fe + kWarps - 1) / kWarps, T * k);
  DISPATCH_QTYPE(wtype, F, {
    ExpertSwiGLUKernel<F><<<grid, kWarps * 32, 0, stream>>>(gate, up, wtype_row_bytes(wtype, H), Fe, H, x, idx, k, act);
  })
  return cudaGetLastError();
}

cudaError_t ExpertDown(const void* const* down, WType wtype, int H, int Fe, const float* act, const int32_t* idx,
                       int n_slots, float* out, cudaStream_t stream) {
  if (cudaError_t e = check_shape(wtype, H, Fe); e != cudaSuccess) return e;
  if (!aligned16(act)) IMP_DISPATCH_FAIL("expert activation address (16-byte aligned), offset", reinterpret_cast<uintptr_t>(act) & 15);
  if (n_slots <= 0) return cudaSuccess;
  const dim3 grid((H + 2 * kWarps - 1) / (2 * kWarps), n_slots);
  DISPATCH_QTYPE(wtype, F, {
    ExpertDownKernel<F><<<grid, kWarps * 32, 0, stream>>>(down, wtype_row_bytes(wtype, Fe), H, Fe, act, idx, out);
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::quant_gemv
