// ggml tensor types as GGUF stores them: the type ids, their block geometry, and the CPU conversions libimp needs
// (dequantisation of F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K rows to fp32, and round-to-nearest quantizers for the
// converter). Block layouts follow ggml/src/ggml-common.h exactly (little-endian, packed):
//   Q8_0 (32 values, 34 bytes):  f16 d; int8 qs[32];                       x = d * q
//   Q4_K (256 values, 144 bytes): f16 d; f16 dmin; u8 scales[12]; u8 qs[128]
//   Q5_K (256 values, 176 bytes): f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
//   Q6_K (256 values, 210 bytes): u8 ql[128]; u8 qh[64]; int8 scales[16]; f16 d
#pragma once

#include <cstddef>
#include <cstdint>

namespace imp::gguf {

enum GgmlType : uint32_t {
  GGML_TYPE_F32 = 0,
  GGML_TYPE_F16 = 1,
  GGML_TYPE_Q4_0 = 2,
  GGML_TYPE_Q4_1 = 3,
  GGML_TYPE_Q5_0 = 6,
  GGML_TYPE_Q5_1 = 7,
  GGML_TYPE_Q8_0 = 8,
  GGML_TYPE_Q8_1 = 9,
  GGML_TYPE_Q2_K = 10,
  GGML_TYPE_Q3_K = 11,
  GGML_TYPE_Q4_K = 12,
  GGML_TYPE_Q5_K = 13,
  GGML_TYPE_Q6_K = 14,
  GGML_TYPE_Q8_K = 15,
  GGML_TYPE_I8 = 24,
  GGML_TYPE_I16 = 25,
  GGML_TYPE_I32 = 26,
  GGML_TYPE_I64 = 27,
  GGML_TYPE_F64 = 28,
  GGML_TYPE_BF16 = 30,
};

struct TypeTraits {
  const char* name;
  uint32_t block;  // values per block
  uint32_t bytes;  // bytes per block
};

// The geometry of a ggml type id, or nullptr for ids this reader does not know (their extents cannot be checked).
const TypeTraits* type_traits(uint32_t type);
const char* type_name(uint32_t type);  // "Q4_K", or "unknown"

constexpr int QK8_0 = 32;
constexpr int QK_K = 256;
constexpr size_t kQ8_0Bytes = 34, kQ4_KBytes = 144, kQ5_KBytes = 176, kQ6_KBytes = 210;

// Dequantise n values (a multiple of the block size) starting at the beginning of `blocks`.
void dequantize_q8_0(const void* blocks, float* out, size_t n);
void dequantize_q4_k(const void* blocks, float* out, size_t n);
void dequantize_q5_k(const void* blocks, float* out, size_t n);
void dequantize_q6_k(const void* blocks, float* out, size_t n);

// Round-to-nearest quantizers (per block; no iterative scale search as ggml's reference quantizers do). n is a
// multiple of the block size; out receives n / block * bytes bytes.
void quantize_q8_0(const float* x, void* out, size_t n);
void quantize_q4_k(const float* x, void* out, size_t n);
void quantize_q5_k(const float* x, void* out, size_t n);
void quantize_q6_k(const float* x, void* out, size_t n);

// fp32 -> IEEE half, round to nearest even (subnormals and overflow to inf handled).
uint16_t f32_to_f16(float f);

}  // namespace imp::gguf
