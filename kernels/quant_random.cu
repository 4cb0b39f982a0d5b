// quant_gemv::FillRandomBlocks (declared in quant_gemv.cuh): random, valid blocks for benchmark models. One thread
// per block; each block's bytes come from a counter-based hash of (seed, block index), so the output does not
// depend on the launch configuration. Everything is written as 2-byte stores (every block is 2-byte aligned).
//
// Scales are chosen so that values spread over about [-scale, scale]:
//   Q8_0: d = scale / 127, q uniform int8                                    value = d q
//   Q4_K: d = 2 scale / (15 * 63), dmin = scale / 63, sub-block scale sc uniform in 48..63 and min m = sc,
//         q uniform 0..15                                                     value = sc/63 * scale * (2q/15 - 1)
//   Q5_K: as Q4_K with 31 levels: d = 2 scale / (31 * 63)
//   Q6_K: d = scale / (32 * 127), sc uniform in 96..127, q uniform 0..63     value = sc/127 * scale * (q - 32)/32
// d is rounded to f16; for scale near the 1e-3 floor the Q6_K d is an f16 subnormal of a few significant bits, so
// the spread is then only about right (within some 10%).
#include "quant_gemv.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

#include <algorithm>
#include <cstdio>

namespace imp::kernels::quant_gemv {

namespace {

// Random words for one block: word k of the block keyed by key.
struct BlockRng {
  uint64_t key;
  __device__ uint64_t word(int k) const { return splitmix64(key ^ splitmix64(uint64_t(k) + 0x632BE59BD9B4E019ull)); }
};

__device__ __forceinline__ void put16(uint8_t* p, uint32_t v) { *reinterpret_cast<unsigned short*>(p) = (unsigned short)v; }
__device__ __forceinline__ uint32_t f16_bits(float v) { return __half_as_ushort(__float2half_rn(v)); }

// n random bytes at p (n a multiple of 8): word w of rng gives bytes 8w .. 8w+7 after `first_word`.
template <int N>
__device__ __forceinline__ void put_random(uint8_t* p, const BlockRng& rng, int first_word) {
#pragma unroll
  for (int w = 0; w < N / 8; ++w) {
    const uint64_t r = rng.word(first_word + w);
#pragma unroll
    for (int i = 0; i < 4; ++i) put16(p + 8 * w + 2 * i, uint32_t(r >> (16 * i)) & 0xFFFFu);
  }
}

// Q4_K / Q5_K header: d, dmin and the 12 bytes of 6-bit scales and mins (ggml's packing, m = sc).
__device__ __forceinline__ void put_k4_head(uint8_t* b, float d, float dmin, uint64_t r) {
  put16(b, f16_bits(d));
  put16(b + 2, f16_bits(dmin));
  uint32_t sc[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) sc[j] = 48u + uint32_t((r >> (4 * j)) & 15u);
  uint32_t q[12];
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    q[j] = (sc[j] & 63u) | ((sc[j + 4] >> 4) << 6);
    q[j + 4] = (sc[j] & 63u) | ((sc[j + 4] >> 4) << 6);  // the mins, equal to the scales
    q[j + 8] = (sc[j + 4] & 0xFu) | ((sc[j + 4] & 0xFu) << 4);
  }
#pragma unroll
  for (int i = 0; i < 6; ++i) put16(b + 4 + 2 * i, q[2 * i] | (q[2 * i + 1] << 8));
}

template <int kType>
__global__ void FillKernel(uint8_t* __restrict__ out, size_t n_blocks, uint64_t seed, float scale) {
  for (size_t blk = size_t(blockIdx.x) * blockDim.x + threadIdx.x; blk < n_blocks; blk += size_t(gridDim.x) * blockDim.x) {
    const BlockRng rng{splitmix64(seed) ^ splitmix64(blk ^ 0xD1B54A32D192ED03ull)};
    if constexpr (kType == int(WType::Q8_0)) {
      uint8_t* b = out + blk * 34;
      put16(b, f16_bits(scale / 127.0f));
      put_random<32>(b + 2, rng, 0);
    } else if constexpr (kType == int(WType::Q4_K)) {
      uint8_t* b = out + blk * 144;
      put_k4_head(b, 2.0f * scale / (15.0f * 63.0f), scale / 63.0f, rng.word(0));
      put_random<128>(b + 16, rng, 1);
    } else if constexpr (kType == int(WType::Q5_K)) {
      uint8_t* b = out + blk * 176;
      put_k4_head(b, 2.0f * scale / (31.0f * 63.0f), scale / 63.0f, rng.word(0));
      put_random<160>(b + 16, rng, 1);  // qh[32] and qs[128]
    } else {  // Q6_K
      uint8_t* b = out + blk * 210;
      put_random<192>(b, rng, 0);  // ql[128] and qh[64]
      const uint64_t r0 = rng.word(24), r1 = rng.word(25);
#pragma unroll
      for (int i = 0; i < 8; ++i) {  // int8 scales in 96..127
        const uint32_t lo = 96u + uint32_t((r0 >> (5 * i)) & 31u), hi = 96u + uint32_t((r1 >> (5 * i)) & 31u);
        put16(b + 192 + 2 * i, lo | (hi << 8));
      }
      put16(b + 208, f16_bits(scale / (32.0f * 127.0f)));
    }
  }
}

}  // namespace

cudaError_t FillRandomBlocks(WType type, void* blocks, size_t n_rows, int cols, uint64_t seed, float scale,
                             cudaStream_t stream) {
  if (!wtype_is_quantized(type)) IMP_DISPATCH_FAIL("FillRandomBlocks type (Q8_0, Q4_K, Q5_K or Q6_K)", int(type));
  if (cols <= 0 || cols % wtype_block_values(type) != 0)
    IMP_DISPATCH_FAIL("FillRandomBlocks cols (a multiple of the block: 32 for Q8_0, 256 for Q4_K/Q5_K/Q6_K)", cols);
  if (!(scale >= 1e-3f && scale <= 65504.0f)) {
    char msg[96];
    std::snprintf(msg, sizeof msg, "Unsupported FillRandomBlocks scale (1e-3 .. 65504): %g", double(scale));
    set_error_detail(msg);
    return cudaErrorInvalidValue;
  }
  if (reinterpret_cast<uintptr_t>(blocks) & 1) IMP_DISPATCH_FAIL("FillRandomBlocks address (2-byte aligned), offset", 1);
  const size_t n_blocks = n_rows * size_t(cols / wtype_block_values(type));
  if (n_blocks == 0) return cudaSuccess;
  const unsigned grid = unsigned(std::min<size_t>((n_blocks + 255) / 256, 132 * 16));
  auto* out = static_cast<uint8_t*>(blocks);
  switch (type) {
    case WType::Q8_0: FillKernel<int(WType::Q8_0)><<<grid, 256, 0, stream>>>(out, n_blocks, seed, scale); break;
    case WType::Q4_K: FillKernel<int(WType::Q4_K)><<<grid, 256, 0, stream>>>(out, n_blocks, seed, scale); break;
    case WType::Q5_K: FillKernel<int(WType::Q5_K)><<<grid, 256, 0, stream>>>(out, n_blocks, seed, scale); break;
    default: FillKernel<int(WType::Q6_K)><<<grid, 256, 0, stream>>>(out, n_blocks, seed, scale); break;
  }
  return cudaGetLastError();
}

}  // namespace imp::kernels::quant_gemv
