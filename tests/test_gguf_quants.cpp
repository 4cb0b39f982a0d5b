// Block formats Q8_0, Q4_K, Q5_K, Q6_K: libimp's dequantizers against a plain fp64 reference written here from
// the block layouts of ggml-common.h (element by element, not ggml's loop structure), known-answer blocks worked
// out by hand, quantize -> dequantize round trips with error bounds, and the F16 conversion.
#include "core/half.h"
#include "gguf/quants.h"
#include "model/safetensors.h"
#include "model/weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace gg = imp::gguf;

namespace {

double half(const unsigned char* p) {
  const unsigned h = unsigned(p[0]) | (unsigned(p[1]) << 8);
  const int e = (h >> 10) & 31, m = h & 1023;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return s * std::ldexp(double(m), -24);
  if (e == 31) return m ? NAN : s * INFINITY;
  return s * std::ldexp(double(1024 + m), e - 25);
}

// Reference: value e (0..block-1) of one block.
double ref_q8_0(const unsigned char* b, int e) { return half(b) * double(int8_t(b[2 + e])); }

void ref_scale_min(const unsigned char* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {  // low 4 bits in s[j+4], high 2 bits in the top of s[j-4] (scale) / s[j] (min)
    sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

double ref_q4_k(const unsigned char* b, int e) {
  const int s = e / 32, byte = b[16 + 32 * (s / 2) + e % 32];
  const int q = (s % 2) ? byte >> 4 : byte & 15;
  int sc, m;
  ref_scale_min(b + 4, s, sc, m);
  return half(b) * sc * q - half(b + 2) * m;
}

double ref_q5_k(const unsigned char* b, int e) {
  const int s = e / 32, byte = b[48 + 32 * (s / 2) + e % 32];
  const int hi = (b[16 + e % 32] >> s) & 1;
  const int q = ((s % 2) ? byte >> 4 : byte & 15) + 16 * hi;
  int sc, m;
  ref_scale_min(b + 4, s, sc, m);
  return half(b) * sc * q - half(b + 2) * m;
}

double ref_q6_k(const unsigned char* b, int e) {
  const int h = e / 128, w = e % 128, quarter = w / 32, l = w % 32;
  const int byte = b[64 * h + (quarter % 2) * 32 + l];
  const int lo = quarter < 2 ? byte & 15 : byte >> 4;
  const int hi = (b[128 + 32 * h + l] >> (2 * quarter)) & 3;
  return half(b + 208) * double(int8_t(b[192 + e / 16])) * double((lo | (hi << 4)) - 32);
}

struct Format {
  const char* name;
  int block;
  size_t bytes;
  void (*quant)(const float*, void*, size_t);
  void (*dequant)(const void*, float*, size_t);
  double (*ref)(const unsigned char*, int);
  imp::DType dtype;
};

const Format kFormats[] = {
    {"Q8_0", 32, 34, gg::quantize_q8_0, gg::dequantize_q8_0, ref_q8_0, imp::DType::Q8_0},
    {"Q4_K", 256, 144, gg::quantize_q4_k, gg::dequantize_q4_k, ref_q4_k, imp::DType::Q4_K},
    {"Q5_K", 256, 176, gg::quantize_q5_k, gg::dequantize_q5_k, ref_q5_k, imp::DType::Q5_K},
    {"Q6_K", 256, 210, gg::quantize_q6_k, gg::dequantize_q6_k, ref_q6_k, imp::DType::Q6_K},
};

std::vector<double> ref_dequant(const Format& f, const std::vector<unsigned char>& q, size_t n) {
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = f.ref(q.data() + (i / f.block) * f.bytes, int(i % f.block));
  return out;
}

void expect_matches_ref(const Format& f, const std::vector<unsigned char>& q, size_t n) {
  std::vector<float> got(n);
  f.dequant(q.data(), got.data(), n);
  std::vector<double> want = ref_dequant(f, q, n);
  for (size_t i = 0; i < n; ++i)
    ASSERT_NEAR(got[i], want[i], 1e-6 * (1.0 + std::fabs(want[i]))) << f.name << " element " << i;
  // The model-level path (to_f32 with a block-aligned offset) reads the same values.
  if (n >= size_t(2 * f.block)) {
    std::vector<float> tail(f.block);
    imp::to_f32(q.data(), f.dtype, f.block, f.block, tail.data());
    for (int i = 0; i < f.block; ++i) ASSERT_EQ(tail[i], got[f.block + i]) << f.name;
  }
}

TEST(GgufQuants, TypeTable) {
  EXPECT_EQ(gg::type_traits(gg::GGML_TYPE_Q8_0)->bytes, 34u);
  EXPECT_EQ(gg::type_traits(gg::GGML_TYPE_Q4_K)->bytes, 144u);
  EXPECT_EQ(gg::type_traits(gg::GGML_TYPE_Q5_K)->bytes, 176u);
  EXPECT_EQ(gg::type_traits(gg::GGML_TYPE_Q6_K)->bytes, 210u);
  EXPECT_EQ(gg::type_traits(gg::GGML_TYPE_BF16)->bytes, 2u);
  EXPECT_EQ(gg::type_traits(4), nullptr);  // removed Q4_2
  EXPECT_EQ(imp::row_bytes(imp::DType::Q4_K, 512), 288u);
  EXPECT_EQ(imp::row_bytes(imp::DType::Q8_0, 64), 68u);
}

TEST(GgufQuants, KnownAnswerQ8_0) {
  std::vector<unsigned char> b(34);
  b[0] = 0x00, b[1] = 0x38;  // d = 0.5
  for (int i = 0; i < 32; ++i) b[2 + i] = uint8_t(int8_t(i - 16));
  std::vector<float> y(32);
  gg::dequantize_q8_0(b.data(), y.data(), 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.5f * float(i - 16));
}

TEST(GgufQuants, KnownAnswerQ4_K) {
  std::vector<unsigned char> b(144, 0);
  b[0] = 0x00, b[1] = 0x3C;  // d = 1
  b[2] = 0x00, b[3] = 0x38;  // dmin = 0.5
  for (int j = 0; j < 4; ++j) b[4 + j] = 2, b[8 + j] = 4;  // sub-blocks 0..3: scale 2, min 4
  for (int j = 0; j < 4; ++j) b[12 + j] = 0x31;             // sub-blocks 4..7: scale 1, min 3 (low bits)
  b[4] |= 0x40;                                             // sub-block 4's scale gets high bits 01: 1 + 16 = 17
  for (int i = 0; i < 128; ++i) b[16 + i] = 0x5A;           // low nibble 10, high nibble 5
  std::vector<float> y(256);
  gg::dequantize_q4_k(b.data(), y.data(), 256);
  EXPECT_EQ(y[0], 1 * 2 * 10 - 0.5f * 4);     // sub-block 0 (low nibbles) = 18
  EXPECT_EQ(y[32 + 5], 1 * 2 * 5 - 0.5f * 4);  // sub-block 1 (high nibbles) = 8
  EXPECT_EQ(y[128], 17 * 10 - 0.5f * 3);       // sub-block 4 = 168.5
  EXPECT_EQ(y[160], 1 * 5 - 0.5f * 3);         // sub-block 5 = 3.5
  EXPECT_EQ(y[255], 1 * 5 - 0.5f * 3);
}

TEST(GgufQuants, KnownAnswerQ5_K) {
  std::vector<unsigned char> b(176, 0);
  b[1] = 0x3C;  // d = 1, dmin = 0
  b[4] = 1;     // sub-block 0 scale 1
  b[5] = 2;     // sub-block 1 scale 2
  b[16] = 0x03; // qh[0]: bit 0 (sub-block 0) and bit 1 (sub-block 1) set
  b[48] = 0x0F; // ql[0]: low nibble 15, high 0
  std::vector<float> y(256);
  gg::dequantize_q5_k(b.data(), y.data(), 256);
  EXPECT_EQ(y[0], 31.0f);   // 15 + 16
  EXPECT_EQ(y[32], 32.0f);  // 2 * (0 + 16)
  EXPECT_EQ(y[1], 0.0f);
}

TEST(GgufQuants, KnownAnswerQ6_K) {
  std::vector<unsigned char> b(210, 0);
  for (int i = 0; i < 128; ++i) b[i] = 0x21;     // ql: low nibble 1, high nibble 2
  for (int i = 0; i < 64; ++i) b[128 + i] = 0xE4;  // qh: 2-bit fields 0, 1, 2, 3 for quarters 0..3
  for (int k = 0; k < 16; ++k) b[192 + k] = uint8_t(k + 1);
  b[208] = 0x00, b[209] = 0x3C;  // d = 1
  std::vector<float> y(256);
  gg::dequantize_q6_k(b.data(), y.data(), 256);
  EXPECT_EQ(y[0], 1 * -31.0f);        // (1 | 0 << 4) - 32, scale 1
  EXPECT_EQ(y[32], 3 * -15.0f);       // (1 | 1 << 4) - 32, scale 3
  EXPECT_EQ(y[64], 5 * 2.0f);         // (2 | 2 << 4) - 32, scale 5
  EXPECT_EQ(y[96], 7 * 18.0f);        // (2 | 3 << 4) - 32, scale 7
  EXPECT_EQ(y[128 + 17], 10 * -31.0f);  // second half, scale index 9
}

TEST(GgufQuants, RoundTripAgainstReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const Format& f : kFormats) {
    const size_t n = 16 * 256;
    std::vector<float> x(n);
    for (float& v : x) v = 0.05f * normal(rng);
    // Special blocks: all zero, constant positive, constant negative, one huge outlier, tiny values.
    std::fill(x.begin(), x.begin() + 256, 0.0f);
    std::fill(x.begin() + 256, x.begin() + 512, 0.3f);
    std::fill(x.begin() + 512, x.begin() + 768, -0.7f);
    x[800] = 40.0f;
    for (size_t i = 1024; i < 1280; ++i) x[i] *= 1e-4f;
    std::vector<unsigned char> q(n / f.block * f.bytes);
    f.quant(x.data(), q.data(), n);
    expect_matches_ref(f, q, n);
    std::vector<double> y = ref_dequant(f, q, n);
    for (size_t i = 0; i < 256; ++i) EXPECT_EQ(y[i], 0.0) << f.name;
    // Error: relative RMS over the Gaussian blocks, and per-block max error against the block's range.
    double num = 0, den = 0;
    for (size_t i = 1280; i < n; ++i) num += (x[i] - y[i]) * (x[i] - y[i]), den += double(x[i]) * x[i];
    const double rel = std::sqrt(num / den);
    const double bound = std::string(f.name) == "Q8_0" ? 0.01 : std::string(f.name) == "Q6_K" ? 0.04
                         : std::string(f.name) == "Q5_K" ? 0.07 : 0.14;
    EXPECT_LT(rel, bound) << f.name;
    for (size_t b0 = 0; b0 < n; b0 += f.block) {
      double amax = 0, emax = 0;
      for (size_t i = b0; i < b0 + f.block; ++i) amax = std::max(amax, double(std::fabs(x[i]))), emax = std::max(emax, std::fabs(x[i] - y[i]));
      // Never worse than a coarse step; the 1e-4 absolute allowance covers the tiny-value block, whose fp16 block
      // scales sit in the subnormal range (inherent to the formats: ggml's quantizers have it too).
      EXPECT_LE(emax, 0.6 * amax + 1e-4) << f.name << " block at " << b0;
    }
    std::printf("%s: relative RMS error %.4f on N(0, 0.05^2) weights\n", f.name, rel);
  }
}

TEST(GgufQuants, Q8_0ErrorIsHalfAStep) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> x(32 * 64);
  for (float& v : x) v = u(rng);
  std::vector<unsigned char> q(64 * 34);
  gg::quantize_q8_0(x.data(), q.data(), x.size());
  std::vector<float> y(x.size());
  gg::dequantize_q8_0(q.data(), y.data(), x.size());
  for (size_t b = 0; b < 64; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const float d = amax / 127;
    for (int i = 0; i < 32; ++i) EXPECT_LE(std::fabs(x[b * 32 + i] - y[b * 32 + i]), 0.5f * d + 127 * d / 2048 + 1e-6f);
  }
}

TEST(GgufQuants, F16Conversion) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 1e-3f, 3.14159f, 1e-9f, 70000.0f})
    EXPECT_EQ(imp::f16_to_f32(gg::f32_to_f16(v)), v > 65520.0f ? INFINITY : float(half(reinterpret_cast<const unsigned char*>(&(const uint16_t&)gg::f32_to_f16(v))))) << v;
  // Exhaustive: every half round-trips.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 31) == 31) continue;
    const float f = imp::f16_to_f32(uint16_t(h));
    EXPECT_EQ(gg::f32_to_f16(f), h == 0x8000 ? 0x8000 : h) << h;
  }
  // Ties round to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(gg::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(gg::f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
}

}  // namespace
