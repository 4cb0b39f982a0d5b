#include "gguf/quants.h"

#include "core/half.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace imp::gguf {

const TypeTraits* type_traits(uint32_t type) {
  static const TypeTraits F32{"F32", 1, 4}, F16{"F16", 1, 2}, Q4_0{"Q4_0", 32, 18}, Q4_1{"Q4_1", 32, 20},
      Q5_0{"Q5_0", 32, 22}, Q5_1{"Q5_1", 32, 24}, Q8_0{"Q8_0", 32, 34}, Q8_1{"Q8_1", 32, 36},
      Q2_K{"Q2_K", 256, 84}, Q3_K{"Q3_K", 256, 110}, Q4_K{"Q4_K", 256, 144}, Q5_K{"Q5_K", 256, 176},
      Q6_K{"Q6_K", 256, 210}, Q8_K{"Q8_K", 256, 292}, I8{"I8", 1, 1}, I16{"I16", 1, 2}, I32{"I32", 1, 4},
      I64{"I64", 1, 8}, F64{"F64", 1, 8}, BF16{"BF16", 1, 2};
  switch (type) {
    case GGML_TYPE_F32: return &F32;
    case GGML_TYPE_F16: return &F16;
    case GGML_TYPE_Q4_0: return &Q4_0;
    case GGML_TYPE_Q4_1: return &Q4_1;
    case GGML_TYPE_Q5_0: return &Q5_0;
    case GGML_TYPE_Q5_1: return &Q5_1;
    case GGML_TYPE_Q8_0: return &Q8_0;
    case GGML_TYPE_Q8_1: return &Q8_1;
    case GGML_TYPE_Q2_K: return &Q2_K;
    case GGML_TYPE_Q3_K: return &Q3_K;
    case GGML_TYPE_Q4_K: return &Q4_K;
    case GGML_TYPE_Q5_K: return &Q5_K;
    case GGML_TYPE_Q6_K: return &Q6_K;
    case GGML_TYPE_Q8_K: return &Q8_K;
    case GGML_TYPE_I8: return &I8;
    case GGML_TYPE_I16: return &I16;
    case GGML_TYPE_I32: return &I32;
    case GGML_TYPE_I64: return &I64;
    case GGML_TYPE_F64: return &F64;
    case GGML_TYPE_BF16: return &BF16;
    default: return nullptr;
  }
}

const char* type_name(uint32_t type) {
  const TypeTraits* t = type_traits(type);
  return t ? t->name : "unknown";
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return uint16_t(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));  // inf / nan
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (abs < 0x33000000u) return uint16_t(sign);  // < 2^-25 rounds to 0
    const uint32_t e = abs >> 23, m = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 + (127 - e) - 1 - ... : value = m * 2^(e-150), half unit 2^-24
    uint32_t h = m >> (shift);
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return uint16_t(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return uint16_t(sign | h);
}

namespace {

inline float h2f(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
inline void put_h(unsigned char* p, uint16_t h) { std::memcpy(p, &h, 2); }
inline int nearest(float x) { return int(std::lrintf(x)); }

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const unsigned char* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void pack_scale_min_k4(const int* sc, const int* m, unsigned char* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

// Asymmetric 8 x 32 sub-block quantisation shared by Q4_K (nmax 15) and Q5_K (nmax 31): per sub-block the range
// [min(0, lo), hi] is split into nmax steps; the scales and mins are then quantised to 6 bits against the
// block's d and dmin (fp16). Writes d, dmin, scales[12] and the levels L[256] (0..nmax).
void quantize_k_asym(const float* x, int nmax, unsigned char* head, uint8_t* L) {
  float scale[8], minv[8];
  for (int j = 0; j < 8; ++j) {
    const float* s = x + 32 * j;
    float lo = s[0], hi = s[0];
    for (int l = 1; l < 32; ++l) lo = std::min(lo, s[l]), hi = std::max(hi, s[l]);
    lo = std::min(lo, 0.0f);
    scale[j] = (hi - lo) / float(nmax);
    minv[j] = -lo;
  }
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) max_scale = std::max(max_scale, scale[j]), max_min = std::max(max_min, minv[j]);
  const uint16_t dh = f32_to_f16(max_scale / 63.0f), mh = f32_to_f16(max_min / 63.0f);
  const float d = f16_to_f32(dh), dmin = f16_to_f32(mh);
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0 ? std::clamp(nearest(scale[j] / d), 0, 63) : 0;
    m[j] = dmin > 0 ? std::clamp(nearest(minv[j] / dmin), 0, 63) : 0;
  }
  put_h(head, dh);
  put_h(head + 2, mh);
  pack_scale_min_k4(sc, m, head + 4);
  for (int j = 0; j < 8; ++j) {
    const float ds = d * float(sc[j]), dm = dmin * float(m[j]);
    for (int l = 0; l < 32; ++l)
      L[32 * j + l] = ds > 0 ? uint8_t(std::clamp(nearest((x[32 * j + l] + dm) / ds), 0, nmax)) : uint8_t(0);
  }
}

}  // namespace

void dequantize_q8_0(const void* blocks, float* out, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(blocks);
  for (size_t i = 0; i < n / QK8_0; ++i, b += kQ8_0Bytes) {
    const float d = h2f(b);
    const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
    for (int l = 0; l < QK8_0; ++l) *out++ = d * float(q[l]);
  }
}

void dequantize_q4_k(const void* blocks, float* out, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(blocks);
  for (size_t i = 0; i < n / QK_K; ++i, b += kQ4_KBytes) {
    const float d = h2f(b), dmin = h2f(b + 2);
    const unsigned char* scales = b + 4;
    const unsigned char* q = b + 16;
    for (int j = 0; j < 4; ++j, q += 32) {
      int sc, m;
      scale_min_k4(2 * j, scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      scale_min_k4(2 * j + 1, scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *out++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *out++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequantize_q5_k(const void* blocks, float* out, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(blocks);
  for (size_t i = 0; i < n / QK_K; ++i, b += kQ5_KBytes) {
    const float d = h2f(b), dmin = h2f(b + 2);
    const unsigned char* scales = b + 4;
    const unsigned char* qh = b + 16;
    const unsigned char* ql = b + 48;
    unsigned u1 = 1, u2 = 2;
    for (int j = 0; j < 4; ++j, ql += 32, u1 <<= 2, u2 <<= 2) {
      int sc, m;
      scale_min_k4(2 * j, scales, sc, m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      scale_min_k4(2 * j + 1, scales, sc, m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) *out++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *out++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

void dequantize_q6_k(const void* blocks, float* out, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(blocks);
  for (size_t i = 0; i < n / QK_K; ++i, b += kQ6_KBytes) {
    const unsigned char* ql = b;
    const unsigned char* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = h2f(b + 208);
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32, sc += 8, out += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        out[l] = d * float(sc[is]) * float(q1);
        out[l + 32] = d * float(sc[is + 2]) * float(q2);
        out[l + 64] = d * float(sc[is + 4]) * float(q3);
        out[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

void quantize_q8_0(const float* x, void* out, size_t n) {
  unsigned char* b = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < n / QK8_0; ++i, b += kQ8_0Bytes, x += QK8_0) {
    float amax = 0;
    for (int l = 0; l < QK8_0; ++l) amax = std::max(amax, std::fabs(x[l]));
    const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
    put_h(b, f32_to_f16(d));
    for (int l = 0; l < QK8_0; ++l) b[2 + l] = uint8_t(int8_t(std::clamp(nearest(x[l] * id), -127, 127)));
  }
}

void quantize_q4_k(const float* x, void* out, size_t n) {
  unsigned char* b = static_cast<unsigned char*>(out);
  uint8_t L[QK_K];
  for (size_t i = 0; i < n / QK_K; ++i, b += kQ4_KBytes, x += QK_K) {
    quantize_k_asym(x, 15, b, L);
    unsigned char* q = b + 16;
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) q[32 * j + l] = uint8_t(L[64 * j + l] | (L[64 * j + 32 + l] << 4));
  }
}

void quantize_q5_k(const float* x, void* out, size_t n) {
  unsigned char* b = static_cast<unsigned char*>(out);
  uint8_t L[QK_K];
  for (size_t i = 0; i < n / QK_K; ++i, b += kQ5_KBytes, x += QK_K) {
    quantize_k_asym(x, 31, b, L);
    unsigned char* qh = b + 16;
    unsigned char* ql = b + 48;
    std::memset(qh, 0, 32);
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        const int l1 = L[64 * j + l], l2 = L[64 * j + 32 + l];
        ql[32 * j + l] = uint8_t((l1 & 0xF) | ((l2 & 0xF) << 4));
        qh[l] = uint8_t(qh[l] | ((l1 >> 4) << (2 * j)) | ((l2 >> 4) << (2 * j + 1)));
      }
  }
}

void quantize_q6_k(const float* x, void* out, size_t n) {
  unsigned char* b = static_cast<unsigned char*>(out);
  for (size_t i = 0; i < n / QK_K; ++i, b += kQ6_KBytes, x += QK_K) {
    float scale[16], max_scale = 0;
    for (int j = 0; j < 16; ++j) {
      float amax = 0;
      for (int l = 0; l < 16; ++l) amax = std::max(amax, std::fabs(x[16 * j + l]));
      scale[j] = amax / 31.0f;
      max_scale = std::max(max_scale, scale[j]);
    }
    const uint16_t dh = f32_to_f16(max_scale / 127.0f);
    const float d = f16_to_f32(dh);
    int8_t sc[16];
    uint8_t L[QK_K];
    for (int j = 0; j < 16; ++j) {
      sc[j] = int8_t(d > 0 ? std::clamp(nearest(scale[j] / d), 0, 127) : 0);
      const float ds = d * float(sc[j]);
      for (int l = 0; l < 16; ++l)
        L[16 * j + l] = uint8_t((ds > 0 ? std::clamp(nearest(x[16 * j + l] / ds), -32, 31) : 0) + 32);
    }
    unsigned char* ql = b;
    unsigned char* qh = b + 128;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* Lh = L + 128 * h;
      for (int l = 0; l < 32; ++l) {
        ql[64 * h + l] = uint8_t((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[64 * h + l + 32] = uint8_t((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[32 * h + l] = uint8_t((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
      }
    }
    std::memcpy(b + 192, sc, 16);
    put_h(b + 208, dh);
  }
}

}  // namespace imp::gguf
