// GGUF-quantized weights on the CUDA backend (Q8_0, Q4_K, Q5_K, Q6_K kept in their blocks on the device) against
// the CPU. Without a CUDA device (or in a build without the CUDA backend) every test skips with "no CUDA device:
// GPU tests skipped".
//   Kernels, each output poisoned with NaN first so that unwritten memory shows:
//     - quant_gemv::Gemv for every type, T = 1, 2, 5, 16 (every T = 1..16 on one shape), cols 256 .. 4352 (Q8_0
//       also row lengths that are not a multiple of 256), row counts that are not a multiple of the rows per
//       block, random blocks (every bit pattern) and quantizer-made ones: within 1e-4 x max|y| of the CPU's
//       dequantisation (lib/gguf/quants) and an fp64 dot product; refusals (cols not whole blocks, T = 17, a float
//       type, misaligned weights or activations) with their messages
//     - Dequantize to BF16 and F16 = the CPU's dequantisation rounded to nearest even, bit for bit; a quantized
//       embedding through elementwise::Embed = the CPU's dequantised rows exactly
//     - the routed MoE experts with quantized expert matrices (moe::ExpertSwiGLU / ExpertDown) vs plain loops
//     - FillRandomBlocks: every byte written, reproducible from the seed, dequantises (CPU) to finite values
//       spread over about [-scale, scale]
//   Models: tiny Qwen3.5 dense and MoE checkpoints converted to GGUF Q8_0 and Q4_K_M (the converter of
//   test_gguf.cpp; HK = HV, and HK < HV whose value heads the converter stores tiled), the CUDA backend
//   against the CPU backend on the same file: logits at all 40 prompt positions (a prefill of more than 16 rows:
//   dequantise + cuBLAS) within 2e-2 x max|logit|, decode after prefill (the GEMV path), MTP logits, and greedy MTP
//   decoding k = 1..4 = plain greedy decoding (C API, CUDA backend).
#include <imp/imp.h>

#include "engine/forward.h"
#include "gguf/convert.h"
#include "gguf/quants.h"
#include "model/model.h"
#include "support/compare.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>
#include "support/tiny_model.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"

#include "elementwise.cuh"
#include "gemv.cuh"
#include "moe.cuh"
#include "quant_gemv.cuh"

#include <cuda_runtime_api.h>
#endif

using imp::test::have_gpu;
using imp::test::randn;
#if defined(IMP_HAVE_CUDA_KERNELS)
using imp::test::Dev;
#endif

namespace {

using imp::test::rel_err;
namespace gg = imp::gguf;

}  // namespace

/* ---------------------------------------------------------------------------------------------------------- */
/* Kernels                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

#if defined(IMP_HAVE_CUDA_KERNELS)
namespace {

namespace kn = imp::kernels;
namespace qg = imp::kernels::quant_gemv;

const kn::WType kQuantTypes[] = {kn::WType::Q8_0, kn::WType::Q4_K, kn::WType::Q5_K, kn::WType::Q6_K};

const char* name_of(kn::WType t) {
  switch (t) {
    case kn::WType::Q8_0: return "Q8_0";
    case kn::WType::Q4_K: return "Q4_K";
    case kn::WType::Q5_K: return "Q5_K";
    case kn::WType::Q6_K: return "Q6_K";
    default: return "float";
  }
}

// The CPU's dequantisation of `rows` rows of `cols` values.
std::vector<float> dequant_cpu(kn::WType t, const std::vector<uint8_t>& blocks, int rows, int cols) {
  std::vector<float> out(size_t(rows) * cols);
  const size_t rb = kn::wtype_row_bytes(t, cols);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* src = blocks.data() + size_t(r) * rb;
    float* dst = out.data() + size_t(r) * cols;
    switch (t) {
      case kn::WType::Q8_0: gg::dequantize_q8_0(src, dst, size_t(cols)); break;
      case kn::WType::Q4_K: gg::dequantize_q4_k(src, dst, size_t(cols)); break;
      case kn::WType::Q5_K: gg::dequantize_q5_k(src, dst, size_t(cols)); break;
      default: gg::dequantize_q6_k(src, dst, size_t(cols)); break;
    }
  }
  return out;
}

void put_f16(uint8_t* p, float v) {
  const uint16_t h = gg::f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

// Random bytes everywhere (every scale, min and quant bit pattern), then positive normal f16 scales of about
// 1e-2 so that the values stay moderate.
std::vector<uint8_t> random_blocks(kn::WType t, int rows, int cols, std::mt19937& rng) {
  std::vector<uint8_t> b(size_t(rows) * kn::wtype_row_bytes(t, cols));
  for (auto& x : b) x = uint8_t(rng());
  std::uniform_real_distribution<float> ud(0.5e-2f, 2e-2f);
  const size_t bb = size_t(kn::wtype_block_bytes(t));
  for (size_t at = 0; at < b.size(); at += bb) {
    if (t == kn::WType::Q6_K) {
      put_f16(&b[at + 208], ud(rng));
    } else {
      put_f16(&b[at], ud(rng));
      if (t != kn::WType::Q8_0) put_f16(&b[at + 2], ud(rng));  // dmin
    }
  }
  return b;
}

// Blocks as the converter makes them: the round-to-nearest quantizers on normal values.
std::vector<uint8_t> quantized_blocks(kn::WType t, int rows, int cols, std::mt19937& rng) {
  const std::vector<float> v = randn(size_t(rows) * cols, rng, 0.05f);
  std::vector<uint8_t> b(size_t(rows) * kn::wtype_row_bytes(t, cols));
  switch (t) {
    case kn::WType::Q8_0: gg::quantize_q8_0(v.data(), b.data(), v.size()); break;
    case kn::WType::Q4_K: gg::quantize_q4_k(v.data(), b.data(), v.size()); break;
    case kn::WType::Q5_K: gg::quantize_q5_k(v.data(), b.data(), v.size()); break;
    default: gg::quantize_q6_k(v.data(), b.data(), v.size()); break;
  }
  return b;
}

// y (T, rows) = x (T, cols) W^T in fp64.
std::vector<float> matmul_ref(const std::vector<float>& w, int rows, int cols, const std::vector<float>& x, int T) {
  std::vector<float> y(size_t(T) * rows);
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < rows; ++r) {
      double s = 0;
      for (int c = 0; c < cols; ++c) s += double(w[size_t(r) * cols + c]) * x[size_t(t) * cols + c];
      y[size_t(t) * rows + r] = float(s);
    }
  return y;
}

void check_gemv(kn::WType t, const std::vector<uint8_t>& blocks, int rows, int cols, const std::vector<int>& Ts,
                std::mt19937& rng, const std::string& what) {
  const std::vector<float> w = dequant_cpu(t, blocks, rows, cols);
  Dev<uint8_t> wd(blocks);
  for (int T : Ts) {
    const std::vector<float> x = randn(size_t(T) * cols, rng);
    Dev<float> xd(x), yd(size_t(T) * rows);
    CUDA_OK(qg::Gemv(wd.p, t, rows, cols, xd.p, T, yd.p, nullptr));
    const std::vector<float> y = yd.down(), ref = matmul_ref(w, rows, cols, x, T);
    EXPECT_LE(rel_err(y.data(), ref.data(), y.size()), 1e-4)
        << name_of(t) << " " << what << ": rows " << rows << " cols " << cols << " T " << T;
  }
}

TEST(CudaQuantKernels, GemvEveryTypeAndShape) {
  REQUIRE_GPU();
  std::mt19937 rng(7);
  for (kn::WType t : kQuantTypes) {
    // Rows that are not a multiple of the rows per block (4 warps x 2 or 4 rows); one block of a row up to 17.
    const std::vector<std::pair<int, int>> shapes = {{37, 256}, {5, 1024}, {130, 4352}, {1, 512}};
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto [rows, cols] = shapes[i];
      std::vector<int> Ts = {1, 2, 5, 16};
      if (i == 0) Ts = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
      check_gemv(t, random_blocks(t, rows, cols, rng), rows, cols, Ts, rng, "random blocks");
      check_gemv(t, quantized_blocks(t, rows, cols, rng), rows, cols, {1, 5}, rng, "quantizer blocks");
    }
  }
  // Q8_0 rows of 32-value blocks that leave the last 256-value chunk partly empty.
  for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{33, 96}, {19, 4128}, {6, 32}})
    check_gemv(kn::WType::Q8_0, random_blocks(kn::WType::Q8_0, rows, cols, rng), rows, cols, {1, 2, 5, 16}, rng,
               "partial chunk");
}

TEST(CudaQuantKernels, GemvRefusesWhatItCannotRead) {
  REQUIRE_GPU();
  Dev<uint8_t> w(size_t(8) * 144 * 4 + 16);
  Dev<float> x(16 * 1024 + 4), y(16 * 64);
  auto refused = [](cudaError_t e, const char* needle) {
    EXPECT_EQ(e, cudaErrorInvalidValue) << needle;
    EXPECT_NE(std::string(kn::last_error_detail()).find(needle), std::string::npos) << kn::last_error_detail();
    kn::clear_error_detail();
  };
  refused(qg::Gemv(w.p, kn::WType::Q4_K, 4, 300, x.p, 1, y.p, nullptr), "cols");   // not whole 256-value blocks
  refused(qg::Gemv(w.p, kn::WType::Q8_0, 4, 100, x.p, 1, y.p, nullptr), "cols");   // not whole 32-value blocks
  refused(qg::Gemv(w.p, kn::WType::Q4_K, 4, 256, x.p, 17, y.p, nullptr), "GEMV rows (1..16): 17");
  refused(qg::Gemv(w.p, kn::WType::Q4_K, 4, 256, x.p, 0, y.p, nullptr), "GEMV rows (1..16): 0");
  refused(qg::Gemv(w.p, kn::WType::BF16, 4, 256, x.p, 1, y.p, nullptr), "quantized weight type");
  refused(qg::Gemv(w.p + 2, kn::WType::Q4_K, 4, 256, x.p, 1, y.p, nullptr), "alignment");
  refused(qg::Gemv(w.p + 1, kn::WType::Q8_0, 4, 256, x.p, 1, y.p, nullptr), "alignment");
  refused(qg::Gemv(w.p, kn::WType::Q8_0, 4, 256, x.p + 1, 1, y.p, nullptr), "activation address");
  refused(qg::Gemv(w.p, kn::WType::Q8_0, 0, 256, x.p, 1, y.p, nullptr), "shape");
  refused(qg::Dequantize(w.p, kn::WType::Q4_K, 4, 256, kn::WType::F32, y.p, nullptr), "target type");
  // The float kernels refuse the quantized types rather than misreading them.
  refused(kn::gemv::Gemv(w.p, kn::WType::Q4_K, 4, 256, x.p, 1, y.p, nullptr), "Unsupported weight type: 4");
  // A 2-byte offset is fine for Q8_0 and Q6_K, whose blocks are only 2-byte aligned anyway.
  CUDA_OK(qg::Gemv(w.p + 2, kn::WType::Q6_K, 1, 256, x.p, 1, y.p, nullptr));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

uint16_t bf16_rne(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  b += 0x7FFFu + ((b >> 16) & 1u);
  return uint16_t(b >> 16);
}

TEST(CudaQuantKernels, DequantizeIsTheCpuValuesRounded) {
  REQUIRE_GPU();
  std::mt19937 rng(11);
  for (kn::WType t : kQuantTypes) {
    for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{7, 512}, {3, 4352}, {2, t == kn::WType::Q8_0 ? 96 : 256}}) {
      for (bool from_quantizer : {false, true}) {
        const std::vector<uint8_t> b = from_quantizer ? quantized_blocks(t, rows, cols, rng) : random_blocks(t, rows, cols, rng);
        const std::vector<float> w = dequant_cpu(t, b, rows, cols);
        Dev<uint8_t> wd(b);
        Dev<uint16_t> out(w.size());
        for (kn::WType to : {kn::WType::BF16, kn::WType::F16}) {
          out.poison();
          CUDA_OK(qg::Dequantize(wd.p, t, rows, cols, to, out.p, nullptr));
          const std::vector<uint16_t> got = out.down();
          size_t bad = 0, first = 0;
          for (size_t i = 0; i < w.size(); ++i) {
            const uint16_t want = to == kn::WType::BF16 ? bf16_rne(w[i]) : gg::f32_to_f16(w[i]);
            if (got[i] != want && bad++ == 0) first = i;
          }
          EXPECT_EQ(bad, 0u) << name_of(t) << (to == kn::WType::BF16 ? " -> BF16" : " -> F16") << " rows " << rows
                             << " cols " << cols << (from_quantizer ? " (quantizer)" : " (random)")
                             << ": first mismatch at " << first << " (CPU value " << w[first] << ")";
        }
      }
    }
  }
}

TEST(CudaQuantKernels, QuantizedEmbeddingIsTheCpuRows) {
  REQUIRE_GPU();
  std::mt19937 rng(13);
  for (kn::WType t : kQuantTypes) {
    const int V = 11, H = t == kn::WType::Q8_0 ? 4128 : 1024;
    const std::vector<uint8_t> b = random_blocks(t, V, H, rng);
    const std::vector<float> w = dequant_cpu(t, b, V, H);
    const std::vector<int32_t> ids = {3, 0, V - 1, 3, 7};
    Dev<uint8_t> wd(b);
    Dev<int32_t> idd(ids);
    Dev<float> out(ids.size() * H);
    CUDA_OK(kn::elementwise::Embed(wd.p, t, H, idd.p, int(ids.size()), out.p, nullptr));
    const std::vector<float> got = out.down();
    for (size_t i = 0; i < ids.size(); ++i)
      EXPECT_EQ(std::memcmp(&got[i * H], &w[size_t(ids[i]) * H], sizeof(float) * H), 0) << name_of(t) << " row " << i;
  }
}

TEST(CudaQuantKernels, RoutedExpertsWithQuantizedMatrices) {
  REQUIRE_GPU();
  std::mt19937 rng(17);
  const int E = 3, H = 512, Fe = 256, T = 3, k = 2;
  const std::vector<int32_t> idx = {0, 2, 1, 0, 2, 1};  // (T, k)
  for (kn::WType t : kQuantTypes) {
    std::vector<std::unique_ptr<Dev<uint8_t>>> mats;
    std::vector<std::vector<float>> gate(E), up(E), down(E);
    std::vector<void*> pg(E), pu(E), pd(E);
    for (int e = 0; e < E; ++e) {
      auto add = [&](int rows, int cols, std::vector<float>& ref, void*& ptr) {
        const std::vector<uint8_t> b = random_blocks(t, rows, cols, rng);
        ref = dequant_cpu(t, b, rows, cols);
        mats.push_back(std::make_unique<Dev<uint8_t>>(b));
        ptr = mats.back()->p;
      };
      add(Fe, H, gate[e], pg[e]);
      add(Fe, H, up[e], pu[e]);
      add(H, Fe, down[e], pd[e]);
    }
    Dev<void*> tg(pg), tu(pu), td(pd);
    const std::vector<float> x = randn(size_t(T) * H, rng);
    Dev<float> xd(x), act(size_t(T) * k * Fe), out(size_t(T) * k * H);
    Dev<int32_t> idd(idx);
    CUDA_OK(kn::moe::ExpertSwiGLU(tg.p, tu.p, t, Fe, H, xd.p, idd.p, T, k, act.p, nullptr));
    const std::vector<float> a = act.down();
    CUDA_OK(kn::moe::ExpertDown(td.p, t, H, Fe, act.p, idd.p, T * k, out.p, nullptr));
    const std::vector<float> o = out.down();
    std::vector<float> a_ref(a.size()), o_ref(o.size());
    for (int s = 0; s < T * k; ++s) {
      const int e = idx[s];
      const float* xr = &x[size_t(s / k) * H];
      for (int f = 0; f < Fe; ++f) {
        double g = 0, u = 0;
        for (int c = 0; c < H; ++c) g += double(gate[e][size_t(f) * H + c]) * xr[c], u += double(up[e][size_t(f) * H + c]) * xr[c];
        a_ref[size_t(s) * Fe + f] = float(g / (1.0 + std::exp(-g)) * u);
      }
      for (int r = 0; r < H; ++r) {  // from the GPU's act, so that each kernel is checked alone
        double d = 0;
        for (int c = 0; c < Fe; ++c) d += double(down[e][size_t(r) * Fe + c]) * a[size_t(s) * Fe + c];
        o_ref[size_t(s) * H + r] = float(d);
      }
    }
    EXPECT_LE(rel_err(a.data(), a_ref.data(), a.size()), 1e-4) << name_of(t) << " gate/up";
    EXPECT_LE(rel_err(o.data(), o_ref.data(), o.size()), 1e-4) << name_of(t) << " down";
  }
}

TEST(CudaQuantKernels, FillRandomBlocksGivesValidBlocksOfTheScale) {
  REQUIRE_GPU();
  const int rows = 9, cols = 512;
  for (kn::WType t : kQuantTypes) {
    const size_t bytes = size_t(rows) * kn::wtype_row_bytes(t, cols);
    for (float scale : {0.02f, 1.0f}) {
      Dev<uint8_t> a(bytes), b(bytes), c(bytes);
      a.poison(0xFF);
      b.poison(0x00);
      CUDA_OK(qg::FillRandomBlocks(t, a.p, rows, cols, 42, scale, nullptr));
      CUDA_OK(qg::FillRandomBlocks(t, b.p, rows, cols, 42, scale, nullptr));
      CUDA_OK(qg::FillRandomBlocks(t, c.p, rows, cols, 43, scale, nullptr));
      const std::vector<uint8_t> ha = a.down(), hb = b.down(), hc = c.down();
      EXPECT_EQ(ha, hb) << name_of(t) << ": every byte written, the same for the same seed";
      EXPECT_NE(ha, hc) << name_of(t) << ": another seed, other bytes";
      const std::vector<float> w = dequant_cpu(t, ha, rows, cols);
      double mx = 0, sum = 0, sq = 0;
      for (float v : w) {
        ASSERT_TRUE(std::isfinite(v)) << name_of(t);
        mx = std::max(mx, double(std::fabs(v)));
        sum += v;
        sq += double(v) * v;
      }
      const double mean = sum / double(w.size()), rms = std::sqrt(sq / double(w.size()));
      std::printf("%s scale %g: max|w| %.4g, rms %.4g, mean %.3g\n", name_of(t), scale, mx, rms, mean);
      EXPECT_LE(mx, 1.02 * scale) << name_of(t);
      EXPECT_GE(mx, 0.5 * scale) << name_of(t);
      EXPECT_GE(rms, 0.3 * scale) << name_of(t);
      EXPECT_LE(rms, 0.8 * scale) << name_of(t);
      EXPECT_LE(std::fabs(mean), 0.05 * scale) << name_of(t);
    }
  }
  Dev<uint8_t> buf(4096);
  EXPECT_EQ(qg::FillRandomBlocks(kn::WType::BF16, buf.p, 1, 256, 1, 1.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(qg::FillRandomBlocks(kn::WType::Q4_K, buf.p, 1, 100, 1, 1.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(qg::FillRandomBlocks(kn::WType::Q4_K, buf.p, 1, 256, 1, 0.0f, nullptr), cudaErrorInvalidValue);
  EXPECT_NE(std::string(kn::last_error_detail()).find("scale"), std::string::npos) << kn::last_error_detail();
  kn::clear_error_detail();
}

}  // namespace
#endif  // IMP_HAVE_CUDA_KERNELS

/* ---------------------------------------------------------------------------------------------------------- */
/* Whole models                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

namespace {

using imp::test::TempDir;
using imp::test::TinyModelOptions;

constexpr double kModelTol = 2e-2;  // x max |CPU|

struct QuantCase {
  bool moe;
  const char* type;  // the converter's type name
  int v_heads = 2;   // 2 = HK; 4: HK < HV, which a Qwen3.5 GGUF stores with the value heads tiled
};
void PrintTo(const QuantCase& q, std::ostream* os) {
  *os << (q.moe ? "MoE " : "dense ") << q.type << (q.v_heads > 2 ? " tiled" : "");
}

// The GGUF file of a case, converted once per process. Dimensions as test_gguf.cpp's (rows of 256 values).
std::string gguf_path(const QuantCase& q) {
  static std::map<std::string, std::unique_ptr<TempDir>> dirs;
  const std::string key = std::string(q.moe ? "moe_" : "dense_") + q.type + std::to_string(q.v_heads);
  auto& dir = dirs[key];
  if (!dir) {
    dir = std::make_unique<TempDir>();
    TinyModelOptions o;
    o.moe = q.moe;
    o.seed = q.moe ? 8 : 7;
    o.hidden = 256;
    o.layers = 4;
    o.n_head = 2;
    o.n_kv = 1;
    o.head_dim = 128;
    o.k_heads = 2;
    o.v_heads = q.v_heads;
    o.k_dim = 32;
    o.v_dim = 64;
    o.ff = 256;
    o.experts = 4;
    o.experts_used = 2;
    o.ff_expert = 256;
    o.ff_shared = 256;
    imp::test::write_tiny_model(dir->path(), o);
    gg::convert_hf_dir(dir->path(), dir->file("model.gguf"), q.type);
  }
  return dir->file("model.gguf");
}

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % vocab);
  return t;
}

std::vector<float> all_logits(imp::ForwardPass& f, const int32_t* toks, int n, int vocab, std::vector<float>* hidden = nullptr,
                              int H = 0) {
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> logits(size_t(n) * vocab, NAN);
  if (hidden) hidden->assign(size_t(n) * H, NAN);
  imp::ForwardBatch b;
  b.tokens = toks;
  b.n_tokens = n;
  b.logit_rows = rows.data();
  b.n_logit_rows = n;
  b.logits = logits.data();
  b.hidden = hidden ? hidden->data() : nullptr;
  f.Forward(b);
  return logits;
}

class CudaQuantModel : public ::testing::TestWithParam<QuantCase> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device: GPU tests skipped";
    path_ = gguf_path(GetParam());
    model_ = imp::load_model(path_);
    V_ = model_->config.n_vocab;
    H_ = model_->config.n_embd;
    prompt_ = random_tokens(40, V_, 17);  // > 16 rows: the dequantise + cuBLAS path
  }
  std::unique_ptr<imp::ForwardPass> cpu() { return imp::make_cpu_forward(*model_, 256, 2); }
  std::unique_ptr<imp::ForwardPass> gpu() {
#if defined(IMP_HAVE_CUDA_KERNELS)
    return imp::make_cuda_forward(*model_, 256, 0);
#else
    return nullptr;
#endif
  }
  std::string path_;
  std::unique_ptr<imp::Model> model_;
  std::vector<int32_t> prompt_;
  int V_ = 0, H_ = 0;
};

TEST_P(CudaQuantModel, PromptLogitsMatchCpu) {
  const int n = int(prompt_.size());
  auto c = cpu();
  auto g = gpu();
  std::vector<float> ch, gh;
  const std::vector<float> want = all_logits(*c, prompt_.data(), n, V_, &ch, H_);
  const std::vector<float> got = all_logits(*g, prompt_.data(), n, V_, &gh, H_);
  double worst = 0;
  for (int p = 0; p < n; ++p) {
    const double e = rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_);
    worst = std::max(worst, e);
    EXPECT_LE(e, kModelTol) << "position " << p;
  }
  EXPECT_LE(rel_err(gh.data(), ch.data(), ch.size()), kModelTol) << "hidden states";
  std::printf("[ %s %s ] GPU vs CPU prompt logits (prefill of %d rows): max rel err %.3g\n",
              GetParam().moe ? "moe" : "dense", GetParam().type, n, worst);
}

// A prefill of 24 rows (dequantise + cuBLAS), then 16 decode steps (the quantized GEMV), against the CPU.
TEST_P(CudaQuantModel, DecodeAfterPrefillMatchesCpu) {
  const int n = int(prompt_.size()), first = 24;
  auto c = cpu();
  const std::vector<float> want = all_logits(*c, prompt_.data(), n, V_);
  auto g = gpu();
  std::vector<float> got = all_logits(*g, prompt_.data(), first, V_);
  got.resize(size_t(n) * V_);
  for (int p = first; p < n; ++p) {
    const std::vector<float> row = all_logits(*g, &prompt_[p], 1, V_);
    std::copy(row.begin(), row.end(), got.begin() + size_t(p) * V_);
  }
  double worst = 0;
  for (int p = 0; p < n; ++p) {
    const double e = rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_);
    worst = std::max(worst, e);
    EXPECT_LE(e, kModelTol) << "position " << p;
  }
  EXPECT_EQ(g->n_past(), n);
  std::printf("[ %s %s ] GPU decode after prefill vs CPU: max rel err %.3g\n", GetParam().moe ? "moe" : "dense",
              GetParam().type, worst);
}

TEST_P(CudaQuantModel, MtpLogitsMatchCpu) {
  if (!model_->weights.has_mtp) GTEST_SKIP() << "no MTP head";
  const int n = int(prompt_.size());
  auto c = cpu();
  auto g = gpu();
  std::vector<float> hidden;
  all_logits(*c, prompt_.data(), n, V_, &hidden, H_);
  all_logits(*g, prompt_.data(), n, V_);
  std::vector<int32_t> next(prompt_.begin() + 1, prompt_.end());
  next.push_back(prompt_[0]);
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> lc(size_t(n) * V_, NAN), lg(size_t(n) * V_, NAN);
  c->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, lc.data(), nullptr));
  g->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, lg.data(), nullptr));
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&lg[size_t(p) * V_], &lc[size_t(p) * V_], V_), kModelTol) << "MTP row " << p;
}

// Through the C ABI with the CUDA backend: greedy MTP decoding (k = 1..4) emits exactly plain greedy decoding.
TEST_P(CudaQuantModel, GreedyMtpParity) {
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_CUDA;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, path_.c_str(), &mp), IMP_OK) << imp_last_error();
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 256;
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, m, &cp), IMP_OK) << imp_last_error();
  const int n_gen = 32;
  auto generate = [&](int k) {
    size_t n = 0;
    std::vector<imp_token> out = imp::test::generate_ids(ctx, prompt_, n_gen, k, &n);
    EXPECT_EQ(n, size_t(n_gen));
    return out;
  };
  const std::vector<imp_token> plain = generate(0);
  ASSERT_TRUE(model_->weights.has_mtp);
  for (int k = 1; k <= 4; ++k) EXPECT_EQ(generate(k), plain) << "n_draft " << k;
  imp_context_free(ctx);
  imp_model_free(m);
}

INSTANTIATE_TEST_SUITE_P(Gguf, CudaQuantModel,
                         ::testing::Values(QuantCase{false, "q8_0"}, QuantCase{false, "q4_k_m"}, QuantCase{true, "q8_0"},
                                           QuantCase{true, "q4_k_m"}, QuantCase{false, "q4_k_m", 4},
                                           QuantCase{true, "q8_0", 4}),
                         [](const ::testing::TestParamInfo<QuantCase>& i) {
                           return std::string(i.param.moe ? "Moe_" : "Dense_") + i.param.type +
                                  (i.param.v_heads > 2 ? "_tiled" : "");
                         });

// Without a GPU the quantized GGUF loads and runs on the CPU as before; the CUDA backend, when present, takes it.
TEST(CudaQuantBackend, QuantizedGgufLoadsForTheCudaBackend) {
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_AUTO;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, gguf_path(QuantCase{false, "q4_k_m"}).c_str(), &mp), IMP_OK) << imp_last_error();
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 64;
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, m, &cp), IMP_OK) << imp_last_error();
  imp_context_free(ctx);
  imp_model_free(m);
}

}  // namespace
