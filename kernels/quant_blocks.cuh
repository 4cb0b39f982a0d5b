// Device side of the quantized-weight family (CUDA sources only): one struct per ggml block format that loads and
// dequantises one lane's share of a 256-value chunk of a row, and the warp loop that dots R weight rows with T
// activation rows. Layouts, the chunk scheme and the requirements are in quant_gemv.cuh.
//
// A format F provides
//   Raw                              the lane's bytes of one chunk of one row, as loaded (registers)
//   kPartialChunks                   whether a row's last chunk can extend past its end (then load gives zeros
//                                    and the activations there are not read)
//   load(row, chunk, lane, cols)     its loads; chunks past the row's end (Q8_0 only) load as zeros
//   dequant<kExact>(raw, lane, w)    w[0..3] = values at group_offset(lane, 0) + 0..3 of the chunk, w[4..7] at
//                                    group_offset(lane, 1) + 0..3; kExact: the CPU's roundings (no fused mul-add)
//   group_offset(lane, g)            where lane's run g (0, 1) of 4 consecutive values starts within the chunk
#ifndef IMP_KERNELS_QUANT_BLOCKS_CUH_
#define IMP_KERNELS_QUANT_BLOCKS_CUH_

#ifndef __CUDACC__
#error "quant_blocks.cuh is for CUDA sources only"
#endif

#include <cuda_fp16.h>

#include <cstdint>

namespace imp::kernels::quant {

constexpr int kChunk = 256;  // values of a row per warp step: one K-quant block, eight Q8_0 blocks

// ---- loads and exact small-integer conversions ---------------------------------------------------------------

__device__ __forceinline__ uint32_t ld_u16(const uint8_t* p) { return __ldg(reinterpret_cast<const unsigned short*>(p)); }
// 4 bytes at a 2-byte aligned address.
__device__ __forceinline__ uint32_t ld_u32_a2(const uint8_t* p) { return ld_u16(p) | (ld_u16(p + 2) << 16); }
__device__ __forceinline__ uint32_t ld_u32(const uint8_t* p) { return __ldg(reinterpret_cast<const unsigned int*>(p)); }
__device__ __forceinline__ uint4 ld_u128(const uint8_t* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
__device__ __forceinline__ int ld_s8(const uint8_t* p) { return __ldg(reinterpret_cast<const signed char*>(p)); }

// The f16 in the low 16 bits of h.
__device__ __forceinline__ float f16_lo(uint32_t h) { return __half2float(__ushort_as_half((unsigned short)(h & 0xFFFFu))); }

constexpr float k2p23 = 8388608.0f;  // 2^23: the float whose low mantissa bits are a small integer

// Byte K of v, minus `bias`, exactly and without an int-to-float conversion: the byte is placed in the mantissa
// of 2^23 (bits 0x4B0000bb), and 2^23 + bias is subtracted.
template <int K>
__device__ __forceinline__ float byte_minus(uint32_t v, float two23_plus_bias) {
  return __int_as_float(int(__byte_perm(v, 0x4B000000u, 0x7650u | K))) - two23_plus_bias;
}

// d * q - m: with the CPU's two roundings (kExact), or one fused multiply-add.
template <bool kExact>
__device__ __forceinline__ float scale_sub(float d, float q, float m) {
  if constexpr (kExact) return __fsub_rn(__fmul_rn(d, q), m);
  else return fmaf(d, q, -m);
}

// The 4 values of the 4 bytes of q (each 0..255), times d minus m (kExact as scale_sub), into w[0..3].
template <bool kExact>
__device__ __forceinline__ void scale_sub4(uint32_t q, float d, float m, float* w) {
  w[0] = scale_sub<kExact>(d, byte_minus<0>(q, k2p23), m);
  w[1] = scale_sub<kExact>(d, byte_minus<1>(q, k2p23), m);
  w[2] = scale_sub<kExact>(d, byte_minus<2>(q, k2p23), m);
  w[3] = scale_sub<kExact>(d, byte_minus<3>(q, k2p23), m);
}

// Scales and mins of sub-blocks 2j and 2j + 1 of a Q4_K / Q5_K block (ggml's get_scale_min_k4, both at once, two
// bytes per word) from its 12 scale bytes (s0 = bytes 0..3, s1 = 4..7, s2 = 8..11), times d and dmin as the CPU
// computes them: sub-block s < 4 keeps 6 bits in byte s of s0 (scale) and s1 (min); s >= 4 keeps the low 4 bits
// in byte s - 4 of s2 (scale low nibble, min high nibble) and the high 2 bits in the top of byte s - 4 of s0 / s1.
__device__ __forceinline__ void scale_min_pair(uint32_t s0, uint32_t s1, uint32_t s2, int j, float d, float dmin,
                                               float& d1, float& m1, float& d2, float& m2) {
  const int sh = 16 * (j & 1);
  uint32_t sc, m;
  if (j < 2) {
    sc = (s0 >> sh) & 0x3F3Fu;
    m = (s1 >> sh) & 0x3F3Fu;
  } else {
    sc = ((s2 >> sh) & 0x0F0Fu) | ((s0 >> (sh + 2)) & 0x3030u);
    m = ((s2 >> (sh + 4)) & 0x0F0Fu) | ((s1 >> (sh + 2)) & 0x3030u);
  }
  d1 = __fmul_rn(d, byte_minus<0>(sc, k2p23));
  d2 = __fmul_rn(d, byte_minus<1>(sc, k2p23));
  m1 = __fmul_rn(dmin, byte_minus<0>(m, k2p23));
  m2 = __fmul_rn(dmin, byte_minus<1>(m, k2p23));
}

// ---- the formats ---------------------------------------------------------------------------------------------

// Q8_0: chunk c holds blocks 8c .. 8c+7. Lane = 8b + i takes values 4i .. 4i+3 of block 8c + b (run 0) and of
// block 8c + 4 + b (run 1); so run g starts at 128g + 4 * lane.
struct BlockQ8_0 {
  static constexpr int kBytes = 34;
  static constexpr bool kPartialChunks = true;  // a row's last chunk may hold fewer than 8 blocks
  struct Raw {
    uint32_t d0, q0, d1, q1;
  };
  __device__ static int group_offset(int lane, int g) { return 128 * g + 4 * lane; }
  __device__ static Raw load(const uint8_t* row, int chunk, int lane, int cols) {
    const int nb = cols / 32, b0 = 8 * chunk + (lane >> 3), b1 = b0 + 4, at = 2 + 4 * (lane & 7);
    Raw r{0, 0, 0, 0};
    if (b0 < nb) {
      const uint8_t* p = row + size_t(b0) * kBytes;
      r.d0 = ld_u16(p);
      r.q0 = ld_u32_a2(p + at);
    }
    if (b1 < nb) {
      const uint8_t* p = row + size_t(b1) * kBytes;
      r.d1 = ld_u16(p);
      r.q1 = ld_u32_a2(p + at);
    }
    return r;
  }
  template <bool kExact>
  __device__ static void dequant(const Raw& r, int, float (&w)[8]) {
    // int8 q = (q ^ 0x80) - 128, taken bytewise.
    const float bias = k2p23 + 128.0f, d0 = f16_lo(r.d0), d1 = f16_lo(r.d1);
    const uint32_t u0 = r.q0 ^ 0x80808080u, u1 = r.q1 ^ 0x80808080u;
    w[0] = __fmul_rn(d0, byte_minus<0>(u0, bias));
    w[1] = __fmul_rn(d0, byte_minus<1>(u0, bias));
    w[2] = __fmul_rn(d0, byte_minus<2>(u0, bias));
    w[3] = __fmul_rn(d0, byte_minus<3>(u0, bias));
    w[4] = __fmul_rn(d1, byte_minus<0>(u1, bias));
    w[5] = __fmul_rn(d1, byte_minus<1>(u1, bias));
    w[6] = __fmul_rn(d1, byte_minus<2>(u1, bias));
    w[7] = __fmul_rn(d1, byte_minus<3>(u1, bias));
  }
};

// Q4_K: chunk = block. Lane = 8j + i takes qs bytes 32j + 4i .. +3: their low nibbles are values 64j + 4i + 0..3
// (sub-block 2j, run 0), their high nibbles values 64j + 32 + 4i + 0..3 (sub-block 2j + 1, run 1).
struct BlockQ4_K {
  static constexpr int kBytes = 144;
  static constexpr bool kPartialChunks = false;
  struct Raw {
    uint4 head;  // d, dmin, scales[12]
    uint32_t qs;
  };
  __device__ static int group_offset(int lane, int g) { return 64 * (lane >> 3) + 32 * g + 4 * (lane & 7); }
  __device__ static Raw load(const uint8_t* row, int chunk, int lane, int) {
    const uint8_t* b = row + size_t(chunk) * kBytes;
    return Raw{ld_u128(b), ld_u32(b + 16 + 32 * (lane >> 3) + 4 * (lane & 7))};
  }
  template <bool kExact>
  __device__ static void dequant(const Raw& r, int lane, float (&w)[8]) {
    const int j = lane >> 3;
    const float d = f16_lo(r.head.x), dmin = f16_lo(r.head.x >> 16);
    float d1, m1, d2, m2;
    scale_min_pair(r.head.y, r.head.z, r.head.w, j, d, dmin, d1, m1, d2, m2);
    scale_sub4<kExact>(r.qs & 0x0F0F0F0Fu, d1, m1, w);
    scale_sub4<kExact>((r.qs >> 4) & 0x0F0F0F0Fu, d2, m2, w + 4);
  }
};

// Q5_K: as Q4_K, plus qh bytes 4i .. 4i+3, whose bits 2j and 2j + 1 are the fifth bits of the two runs.
struct BlockQ5_K {
  static constexpr int kBytes = 176;
  static constexpr bool kPartialChunks = false;
  struct Raw {
    uint4 head;  // d, dmin, scales[12]
    uint32_t qh, qs;
  };
  __device__ static int group_offset(int lane, int g) { return BlockQ4_K::group_offset(lane, g); }
  __device__ static Raw load(const uint8_t* row, int chunk, int lane, int) {
    const uint8_t* b = row + size_t(chunk) * kBytes;
    return Raw{ld_u128(b), ld_u32(b + 16 + 4 * (lane & 7)), ld_u32(b + 48 + 32 * (lane >> 3) + 4 * (lane & 7))};
  }
  template <bool kExact>
  __device__ static void dequant(const Raw& r, int lane, float (&w)[8]) {
    const int j = lane >> 3;
    const float d = f16_lo(r.head.x), dmin = f16_lo(r.head.x >> 16);
    float d1, m1, d2, m2;
    scale_min_pair(r.head.y, r.head.z, r.head.w, j, d, dmin, d1, m1, d2, m2);
    const uint32_t lo = (r.qs & 0x0F0F0F0Fu) | (((r.qh >> (2 * j)) & 0x01010101u) << 4);
    const uint32_t hi = ((r.qs >> 4) & 0x0F0F0F0Fu) | (((r.qh >> (2 * j + 1)) & 0x01010101u) << 4);
    scale_sub4<kExact>(lo, d1, m1, w);
    scale_sub4<kExact>(hi, d2, m2, w + 4);
  }
};

// Q6_K: chunk = block. Lane = 16h + 8p + i takes l = 4i .. 4i+3 of half h for q = p (run 0: low nibbles of
// ql[64h + 32p + l]) and q = p + 2 (run 1: their high nibbles); run g starts at 128h + 32p + 64g + 4i.
struct BlockQ6_K {
  static constexpr int kBytes = 210;
  static constexpr bool kPartialChunks = false;
  struct Raw {
    uint32_t ql, qh;
    int sc0, sc1;  // int8 scales of the two runs
    uint32_t d;
  };
  __device__ static int group_offset(int lane, int g) {
    return 128 * (lane >> 4) + 32 * ((lane >> 3) & 1) + 64 * g + 4 * (lane & 7);
  }
  __device__ static Raw load(const uint8_t* row, int chunk, int lane, int) {
    const uint8_t* b = row + size_t(chunk) * kBytes;
    const int h = lane >> 4, p = (lane >> 3) & 1, i = lane & 7;
    const uint8_t* sc = b + 192 + 8 * h + 2 * p + (i >> 2);
    return Raw{ld_u32_a2(b + 64 * h + 32 * p + 4 * i), ld_u32_a2(b + 128 + 32 * h + 4 * i), ld_s8(sc), ld_s8(sc + 4),
               ld_u16(b + 208)};
  }
  template <bool kExact>
  __device__ static void dequant(const Raw& r, int lane, float (&w)[8]) {
    const int p = (lane >> 3) & 1;
    const float d = f16_lo(r.d), bias = k2p23 + 32.0f;
    const float d0 = __fmul_rn(d, float(r.sc0)), d1 = __fmul_rn(d, float(r.sc1));
    const uint32_t q0 = (r.ql & 0x0F0F0F0Fu) | (((r.qh >> (2 * p)) & 0x03030303u) << 4);
    const uint32_t q1 = ((r.ql >> 4) & 0x0F0F0F0Fu) | (((r.qh >> (2 * p + 4)) & 0x03030303u) << 4);
    w[0] = __fmul_rn(d0, byte_minus<0>(q0, bias));
    w[1] = __fmul_rn(d0, byte_minus<1>(q0, bias));
    w[2] = __fmul_rn(d0, byte_minus<2>(q0, bias));
    w[3] = __fmul_rn(d0, byte_minus<3>(q0, bias));
    w[4] = __fmul_rn(d1, byte_minus<0>(q1, bias));
    w[5] = __fmul_rn(d1, byte_minus<1>(q1, bias));
    w[6] = __fmul_rn(d1, byte_minus<2>(q1, bias));
    w[7] = __fmul_rn(d1, byte_minus<3>(q1, bias));
  }
};

// ---- the warp loop -------------------------------------------------------------------------------------------

// acc[r][t] += this lane's part of row r (cols values at rows[r]) . x row t (x + t * x_stride, 16-byte aligned);
// the caller sums acc over the warp. U chunks of every row are loaded before the first is used.
template <class F, int T, int R, int U>
__device__ __forceinline__ void dot_rows(const uint8_t* const (&rows)[R], const float* __restrict__ x, size_t x_stride,
                                         int cols, float (&acc)[R][T]) {
  const int lane = threadIdx.x & 31;
  const int n_chunks = (cols + kChunk - 1) / kChunk;
  for (int c0 = 0; c0 < n_chunks; c0 += U) {
    typename F::Raw raw[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (c0 + u < n_chunks) raw[u][r] = F::load(rows[r], c0 + u, lane, cols);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + u;
      if (c >= n_chunks) break;
      float w[R][8];
#pragma unroll
      for (int r = 0; r < R; ++r) F::template dequant<false>(raw[u][r], lane, w[r]);
      const int off0 = c * kChunk + F::group_offset(lane, 0), off1 = c * kChunk + F::group_offset(lane, 1);
      const bool in0 = !F::kPartialChunks || off0 < cols, in1 = !F::kPartialChunks || off1 < cols;
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float* xt = x + size_t(t) * x_stride;
        const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
        const float4 xa = in0 ? __ldg(reinterpret_cast<const float4*>(xt + off0)) : zero;
        const float4 xb = in1 ? __ldg(reinterpret_cast<const float4*>(xt + off1)) : zero;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float s = acc[r][t];
          s = fmaf(w[r][0], xa.x, s);
          s = fmaf(w[r][1], xa.y, s);
          s = fmaf(w[r][2], xa.z, s);
          s = fmaf(w[r][3], xa.w, s);
          s = fmaf(w[r][4], xb.x, s);
          s = fmaf(w[r][5], xb.y, s);
          s = fmaf(w[r][6], xb.z, s);
          s = fmaf(w[r][7], xb.w, s);
          acc[r][t] = s;
        }
      }
    }
  }
}

}  // namespace imp::kernels::quant

#endif  // IMP_KERNELS_QUANT_BLOCKS_CUH_
