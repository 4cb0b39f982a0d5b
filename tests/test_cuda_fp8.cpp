// The FP8 draft head of the CUDA backend (kernels/gemv_fp8.cuh, lib/cuda/lm_head_fp8.h, MtpBatch::low_precision_head).
// Without a CUDA device (or in a build without the CUDA backend) every test skips with "no CUDA device: GPU tests
// skipped".
//   Kernels, against plain CPU loops, outputs poisoned with NaN first (and guard elements past the end):
//   QuantiseRows gives the exact bytes and scales of a CPU E4M3 reference (round to nearest even, saturating) for
//   F32/F16/BF16 rows, ties and subnormals included; the GEMV decodes every code exactly and matches an fp64 loop
//   over the dequantised weights within 1e-4 x max|y| for T = 1..16, odd row counts, the 16-byte and the scalar path.
//   Models (the random tiny models and the transformers fixtures): the device FP8 head equals the CPU quantisation
//   of the model's lm_head (the embedding when tied) and is shared; the MTP logits with the FP8 head match the CPU
//   emulation on the same h_mtp, stay close to the exact head's (the difference is printed), and honour
//   vocab_limit; greedy MTP decoding with the FP8 draft head, k = 1..4, emits exactly plain greedy decoding.
#include <imp/imp.h>

#include "api/handles.h"
#include "core/half.h"
#include "cpu/ops.h"
#include "engine/forward.h"
#include "model/model.h"
#include "support/compare.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>
#include "support/golden.h"
#include "support/tiny_model.h"


#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"
#include "cuda/device_weights.h"
#include "cuda/lm_head_fp8.h"

#include "gemv_fp8.cuh"

#include <cuda_runtime_api.h>
#endif

using imp::test::have_gpu;
using imp::test::randn;
#if defined(IMP_HAVE_CUDA_KERNELS)
using imp::test::Dev;
#endif

namespace {

using imp::test::rel_err;

// ---- the CPU E4M3 reference, from the format's definition ---------------------------------------------------

// E4M3: sign, 4 exponent bits (bias 7), 3 mantissa bits; subnormal below exponent 1; no infinities; 0x7F and 0xFF
// are NaN, so the largest finite value is 0x7E = 1.75 x 2^8 = 448. Codes 0x00..0x7E increase in magnitude.
double e4m3_value(uint8_t code) {
  const int e = (code >> 3) & 15, m = code & 7;
  const double mag = e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1.0 + m / 8.0, e - 7);
  return code & 0x80 ? -mag : mag;
}

// The code nearest to v, ties to the even code, saturating to +-448 (finite v).
uint8_t e4m3_round(float v) {
  const double a = std::fabs(double(v));
  uint8_t code = 0x7E;
  if (a < 448.0) {
    int lo = 0;
    while (lo < 0x7E && e4m3_value(uint8_t(lo + 1)) <= a) ++lo;
    const double below = a - e4m3_value(uint8_t(lo)), above = e4m3_value(uint8_t(lo + 1)) - a;
    code = uint8_t(below < above ? lo : above < below ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1));
  }
  return uint8_t(code | (std::signbit(v) ? 0x80 : 0));
}

// One row quantised as QuantiseRows documents it, in fp32 as the kernel computes it.
float quantise_row(const float* w, int cols, uint8_t* q) {
  float amax = 0.0f;
  for (int c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(w[c]));
  const float s = amax / 448.0f;
  const float scale = s > 0.0f ? s : 1.0f;
  for (int c = 0; c < cols; ++c) q[c] = e4m3_round(w[c] / scale);
  return scale;
}

}  // namespace

/* ---------------------------------------------------------------------------------------------------------- */
/* Kernels                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

#if defined(IMP_HAVE_CUDA_KERNELS)
namespace {

namespace kn = imp::kernels;

// Rows in a stored type, with their exact fp32 values.
struct StoredRows {
  std::vector<uint16_t> bits;  // F16 / BF16
  std::vector<float> f32;      // the values (the F32 storage itself)
};

StoredRows to_stored(kn::WType t, std::vector<float> v) {
  StoredRows s;
  s.f32 = std::move(v);
  if (t == kn::WType::F32) return s;
  s.bits.resize(s.f32.size());
  for (size_t i = 0; i < s.f32.size(); ++i) {
    if (t == kn::WType::BF16) {
      uint32_t b;
      std::memcpy(&b, &s.f32[i], 4);
      s.bits[i] = uint16_t(b >> 16);
      s.f32[i] = imp::bf16_to_f32(s.bits[i]);
    } else {  // a nearby F16 (codes 0..0x7BFF are the finite magnitudes, increasing)
      static const std::vector<float> magnitudes = [] {
        std::vector<float> m(0x7C00);
        for (size_t c = 0; c < m.size(); ++c) m[c] = imp::f16_to_f32(uint16_t(c));
        return m;
      }();
      const float a = std::min(std::fabs(s.f32[i]), magnitudes.back());
      const size_t code = size_t(std::lower_bound(magnitudes.begin(), magnitudes.end(), a) - magnitudes.begin());
      s.bits[i] = uint16_t(code | (std::signbit(s.f32[i]) ? 0x8000 : 0));
      s.f32[i] = imp::f16_to_f32(s.bits[i]);
    }
  }
  return s;
}

// Rows that probe the rounding: an all-zero row; a row whose max is 448 (scale 1) holding exact midpoints between
// neighbouring codes, normal and subnormal (ties go to the even code), values just off them, and negative zero;
// a row with one outlier, so most values land on subnormal codes; then random rows, some with a wide range.
std::vector<float> probe_rows(int rows, int cols, std::mt19937& rng) {
  std::vector<float> w = randn(size_t(rows) * cols, rng, 0.05f);
  std::uniform_real_distribution<float> decades(-4.0f, 2.0f);
  for (int r = 3; r < rows; r += 2)
    for (int c = 0; c < cols; ++c) w[size_t(r) * cols + c] *= std::pow(10.0f, decades(rng));
  for (int c = 0; c < cols; ++c) w[c] = 0.0f;  // (std::fill here drew a false -Wstringop-overflow from GCC 13)
  float* ties = &w[size_t(1) * cols];
  for (int c = 0; c < cols; ++c) {
    const uint8_t lo = uint8_t(c % 0x7E);
    const double mid = 0.5 * (e4m3_value(lo) + e4m3_value(uint8_t(lo + 1)));
    const float v = c % 3 == 0 ? float(mid) : c % 3 == 1 ? std::nextafter(float(mid), 0.0f) : std::nextafter(float(mid), 1e9f);
    ties[c] = c % 2 ? -v : v;
  }
  ties[0] = 448.0f;
  if (cols > 1) ties[1] = -0.0f;
  if (rows > 2) {
    float* outlier = &w[size_t(2) * cols];
    for (int c = 0; c < cols; ++c) outlier[c] *= 1e-3f;
    outlier[cols / 2] = 7.0f;
  }
  return w;
}

TEST(CudaFp8Kernels, QuantiseRowsGivesTheCpuReferenceBytes) {
  REQUIRE_GPU();
  std::mt19937 rng(11);
  for (kn::WType t : {kn::WType::F32, kn::WType::F16, kn::WType::BF16}) {
    for (int cols : {256, 35, 4096}) {
      const int rows = 23;
      StoredRows w = to_stored(t, probe_rows(rows, cols, rng));
      Dev<float> wf(w.f32);
      Dev<uint16_t> wh(w.bits.empty() ? std::vector<uint16_t>(1) : w.bits);
      const void* wd = t == kn::WType::F32 ? static_cast<const void*>(wf.p) : static_cast<const void*>(wh.p);
      Dev<uint8_t> q(size_t(rows) * cols);
      Dev<float> scales(rows);
      CUDA_OK(kn::gemv_fp8::QuantiseRows(wd, t, rows, cols, q.p, scales.p, nullptr));
      std::vector<uint8_t> got_q = q.down(), want_q(got_q.size());
      std::vector<float> got_s = scales.down(), want_s(rows);
      for (int r = 0; r < rows; ++r) want_s[r] = quantise_row(&w.f32[size_t(r) * cols], cols, &want_q[size_t(r) * cols]);
      int bad = 0;
      for (size_t i = 0; i < got_q.size() && bad < 5; ++i)
        if (got_q[i] != want_q[i])
          ++bad, ADD_FAILURE() << "dtype " << int(t) << " cols " << cols << " row " << i / cols << " col " << i % cols
                               << ": w " << w.f32[i] << " code 0x" << std::hex << int(got_q[i]) << ", want 0x" << int(want_q[i]);
      for (int r = 0; r < rows; ++r) EXPECT_EQ(got_s[r], want_s[r]) << "dtype " << int(t) << " cols " << cols << " row " << r;
      EXPECT_EQ(got_s[0], 1.0f) << "an all-zero row has scale 1";
      EXPECT_TRUE(q.guard_intact());
      EXPECT_TRUE(scales.guard_intact());
    }
  }
  EXPECT_EQ(kn::gemv_fp8::QuantiseRows(nullptr, kn::WType(7), 4, 4, nullptr, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_STREQ(kn::last_error_detail(), "Unsupported weight type: 7");
  kn::clear_error_detail();
}

// Every finite code, one per row, times a scale per row; x one-hot: y[r] = scale_r * value(code r) exactly, on the
// 16-byte path (cols 16) and the scalar path (cols 17).
TEST(CudaFp8Kernels, GemvDecodesEveryCodeExactly) {
  REQUIRE_GPU();
  const int rows = 256;
  for (int cols : {16, 17}) {
    std::vector<uint8_t> q(size_t(rows) * cols);
    std::vector<float> scales(rows);
    for (int r = 0; r < rows; ++r) {
      const uint8_t code = (r & 0x7F) == 0x7F ? 0 : uint8_t(r);  // NaN codes are never stored
      std::fill(q.begin() + size_t(r) * cols, q.begin() + size_t(r + 1) * cols, code);
      scales[r] = r % 3 == 0 ? 1.0f : r % 3 == 1 ? 3.0f * 0x1p-10f : 1e3f / 448.0f;
    }
    for (int hot : {0, cols - 1}) {
      std::vector<float> x(cols, 0.0f);
      x[hot] = 1.0f;
      Dev<uint8_t> qd(q);
      Dev<float> sd(scales), xd(x), yd(rows);
      CUDA_OK(kn::gemv_fp8::Gemv(qd.p, sd.p, rows, cols, xd.p, 1, yd.p, nullptr));
      std::vector<float> y = yd.down();
      for (int r = 0; r < rows; ++r)
        EXPECT_EQ(y[r], float(e4m3_value(q[size_t(r) * cols])) * scales[r]) << "cols " << cols << " code 0x" << std::hex << r;
      EXPECT_TRUE(yd.guard_intact());
    }
  }
}

TEST(CudaFp8Kernels, GemvMatchesDequantisedFp64) {
  REQUIRE_GPU();
  std::mt19937 rng(5);
  struct Shape {
    int rows, cols;
  };
  // 16-byte path (one step, steps with a short tail, the 9B-like width), scalar path (odd cols), odd row counts
  // (not a multiple of the 4 rows per warp or 32 rows per block).
  for (Shape s : {Shape{37, 256}, Shape{41, 1040}, Shape{1001, 4096}, Shape{13, 35}, Shape{3, 72}}) {
    std::vector<float> w = probe_rows(s.rows, s.cols, rng);
    std::vector<uint8_t> q(w.size());
    std::vector<float> scales(s.rows);
    std::vector<double> deq(w.size());
    for (int r = 0; r < s.rows; ++r) {
      scales[r] = quantise_row(&w[size_t(r) * s.cols], s.cols, &q[size_t(r) * s.cols]);
      for (int c = 0; c < s.cols; ++c)
        deq[size_t(r) * s.cols + c] = double(scales[r]) * e4m3_value(q[size_t(r) * s.cols + c]);
    }
    Dev<uint8_t> qd(q);
    Dev<float> sd(scales);
    for (int T = 1; T <= kn::gemv_fp8::kMaxRows; ++T) {
      if (s.rows > 100 && T != 1 && T != 2 && T != 7 && T != 16) continue;
      // Activations over six decades, some rows of them tiny, so the scaled accumulation is exercised.
      std::vector<float> x = randn(size_t(T) * s.cols, rng);
      std::uniform_real_distribution<float> decades(-3.0f, 3.0f);
      for (auto& v : x) v *= std::pow(10.0f, decades(rng));
      Dev<float> xd(x), yd(size_t(T) * s.rows);
      CUDA_OK(kn::gemv_fp8::Gemv(qd.p, sd.p, s.rows, s.cols, xd.p, T, yd.p, nullptr));
      std::vector<float> y = yd.down(), ref(y.size());
      for (int t = 0; t < T; ++t)
        for (int r = 0; r < s.rows; ++r) {
          double acc = 0;
          for (int c = 0; c < s.cols; ++c) acc += deq[size_t(r) * s.cols + c] * x[size_t(t) * s.cols + c];
          ref[size_t(t) * s.rows + r] = float(acc);
        }
      for (int t = 0; t < T; ++t)
        EXPECT_LE(rel_err(&y[size_t(t) * s.rows], &ref[size_t(t) * s.rows], s.rows), 1e-4)
            << "rows " << s.rows << " cols " << s.cols << " T " << T << " activation row " << t;
      EXPECT_TRUE(yd.guard_intact()) << "rows " << s.rows << " cols " << s.cols << " T " << T;
    }
  }
  EXPECT_EQ(kn::gemv_fp8::Gemv(nullptr, nullptr, 4, 16, nullptr, 17, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_STREQ(kn::last_error_detail(), "Unsupported GEMV rows (1..16): 17");
  kn::clear_error_detail();
}

}  // namespace
#endif  // IMP_HAVE_CUDA_KERNELS

/* ---------------------------------------------------------------------------------------------------------- */
/* Models                                                                                                     */
/* ---------------------------------------------------------------------------------------------------------- */

namespace {

using imp::test::TempDir;
using imp::test::TinyModelOptions;

using imp::test::is_fixture;
std::string model_dir(const std::string& name) { return imp::test::cuda_test_model_dir(name); }

int32_t argmax_of(const float* v, int n) { return int32_t(std::max_element(v, v + n) - v); }

// The FP8 draft head's logits may differ from the exact head's by this much (x max |logit| of the row): E4M3 keeps
// 3 mantissa bits, so each weight is within 2^-4 of itself relative to its own size, and the logits, sums of H
// such products of both signs, land within a few percent: 0.034-0.052 on these models' prompts in the CPU
// emulation (printed with the GPU's by the test below).
constexpr double kFp8HeadGap = 0.08;

class CudaFp8Model : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    REQUIRE_GPU();
    model_ = imp::load_model(model_dir(GetParam()));
    V_ = model_->config.n_vocab;
    H_ = model_->config.n_embd;
    if (is_fixture(GetParam())) {
      golden_ = imp::test::load_golden(GetParam());
      prompt_ = golden_.prompt;
    } else {
      std::mt19937 rng(17);
      for (int i = 0; i < 40; ++i) prompt_.push_back(int32_t(rng() % V_));  // > 16 rows: the chunked head
    }
    // The CPU quantisation of the head, dequantised: deq_[v][c] = scale_v * E4M3(q_[v][c]).
    const imp::Mat& head = model_->weights.lm_head;
    head_.resize(size_t(V_) * H_);
    q_.resize(head_.size());
    scales_.resize(V_);
    deq_.resize(head_.size());
    for (int v = 0; v < V_; ++v) {
      imp::cpu::embed_row(head, v, &head_[size_t(v) * H_]);
      scales_[v] = quantise_row(&head_[size_t(v) * H_], H_, &q_[size_t(v) * H_]);
      for (int c = 0; c < H_; ++c) deq_[size_t(v) * H_ + c] = float(double(scales_[v]) * e4m3_value(q_[size_t(v) * H_ + c]));
    }
  }

  // y (V) = W h in fp64 for W = the exact head or the dequantised one.
  std::vector<float> head_times(const std::vector<float>& W, const float* h) const {
    std::vector<float> y(V_);
    for (int v = 0; v < V_; ++v) {
      double acc = 0;
      for (int c = 0; c < H_; ++c) acc += double(W[size_t(v) * H_ + c]) * h[c];
      y[v] = float(acc);
    }
    return y;
  }

  std::unique_ptr<imp::Model> model_;
  imp::test::Golden golden_;
  std::vector<int32_t> prompt_;
  int V_ = 0, H_ = 0;
  std::vector<float> head_, deq_, scales_;
  std::vector<uint8_t> q_;
};

#if defined(IMP_HAVE_CUDA_KERNELS)
// The device FP8 copy of the lm_head (the embedding when tied) is the CPU quantisation, byte for byte, and one
// copy serves every request for the same device weights.
TEST_P(CudaFp8Model, DeviceCopyIsTheCpuQuantisation) {
  auto w = imp::cuda::device_weights(*model_, 0);
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreate(&stream));
  auto a = imp::cuda::lm_head_fp8(w, stream);
  auto b = imp::cuda::lm_head_fp8(w, stream);
  EXPECT_EQ(a.get(), b.get());
  ASSERT_EQ(a->rows, V_);
  ASSERT_EQ(a->cols, H_);
  std::vector<uint8_t> q(q_.size());
  std::vector<float> scales(V_);
  CUDA_OK(cudaMemcpy(q.data(), a->q, q.size(), cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(scales.data(), a->scales, sizeof(float) * V_, cudaMemcpyDeviceToHost));
  EXPECT_EQ(q, q_);
  EXPECT_EQ(scales, scales_);
  CUDA_OK(cudaStreamDestroy(stream));
}
#endif

// MTP logits with the FP8 head: the CPU emulation on the same h_mtp within 1e-4, the exact head's within
// kFp8HeadGap; vocab_limit computes and writes ids [0, limit) only, with either head; a chain step (one row)
// as well.
TEST_P(CudaFp8Model, DraftLogitsMatchTheEmulationAndStayNearTheExactHead) {
  if (!model_->weights.has_mtp) GTEST_SKIP() << "no MTP head";
#if defined(IMP_HAVE_CUDA_KERNELS)
  const int n = int(prompt_.size());
  auto g = imp::make_cuda_forward(*model_, 256, 0);
  std::vector<float> hidden(size_t(n) * H_, NAN);
  imp::ForwardBatch fb;
  fb.tokens = prompt_.data();
  fb.n_tokens = n;
  fb.hidden = hidden.data();
  g->Forward(fb);
  std::vector<int32_t> next(prompt_.begin() + 1, prompt_.end()), rows(n);
  next.push_back(prompt_[0]);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> exact(size_t(n) * V_, NAN), fp8(size_t(n) * V_, NAN), h_exact(size_t(n) * H_, NAN),
      h_fp8(size_t(n) * H_, NAN);
  imp::MtpBatch b = imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, exact.data(), h_exact.data());
  g->PrefillMtp(b);
  b.logits = fp8.data();
  b.hidden_out = h_fp8.data();
  b.low_precision_head = true;
  g->PrefillMtp(b);  // the same rows again: the MTP layer's result is the same, only the head differs
  EXPECT_LE(rel_err(h_fp8.data(), h_exact.data(), h_exact.size()), 1e-6);

  double vs_emulation = 0, gap = 0, emulated_gap = 0;
  int same_argmax = 0;
  for (int p = 0; p < n; ++p) {
    const float* hp = &h_fp8[size_t(p) * H_];
    const std::vector<float> want = head_times(deq_, hp), want_exact = head_times(head_, hp);
    const float* got = &fp8[size_t(p) * V_];
    vs_emulation = std::max(vs_emulation, rel_err(got, want.data(), V_));
    gap = std::max(gap, rel_err(got, &exact[size_t(p) * V_], V_));
    emulated_gap = std::max(emulated_gap, rel_err(want.data(), want_exact.data(), V_));
    same_argmax += argmax_of(got, V_) == argmax_of(&exact[size_t(p) * V_], V_);
  }
  EXPECT_LE(vs_emulation, 1e-4) << "FP8 head vs its CPU emulation";
  EXPECT_LE(gap, kFp8HeadGap) << "FP8 head vs the exact head";
  EXPECT_LE(gap, emulated_gap + 1e-2) << "the GPU's gap vs the CPU emulation's on the same h_mtp";
  std::printf("[ %s ] FP8 draft head vs exact head: max rel diff %.3g (CPU emulation %.3g), argmax agrees on %d/%d "
              "rows; vs the CPU FP8 emulation %.3g\n",
              GetParam(), gap, emulated_gap, same_argmax, n, vs_emulation);

  // vocab_limit: ids [0, limit) computed, the rest of each row (stride V) untouched, FP8 and exact head alike.
  const int limit = V_ / 2 + 1;
  for (bool low : {true, false}) {
    std::vector<float> lim(size_t(n) * V_, NAN);
    b.logits = lim.data();
    b.hidden_out = nullptr;
    b.vocab_limit = limit;
    b.low_precision_head = low;
    g->PrefillMtp(b);
    const std::vector<float>& full = low ? fp8 : exact;
    for (int p = 0; p < n; ++p) {
      EXPECT_LE(rel_err(&lim[size_t(p) * V_], &full[size_t(p) * V_], limit), 1e-5) << "low " << low << " row " << p;
      EXPECT_TRUE(std::all_of(lim.begin() + size_t(p) * V_ + limit, lim.begin() + size_t(p + 1) * V_,
                              [](float x) { return std::isnan(x); }))
          << "low " << low << " row " << p << ": ids past vocab_limit were written";
    }
  }

  // One chain step, as draft() runs it: one row through the FP8 head.
  int32_t tok = argmax_of(&fp8[size_t(n - 1) * V_], V_), row0 = 0;
  std::vector<float> step(V_, NAN), step_h(H_, NAN);
  imp::MtpBatch s = imp::test::mtp_batch(&tok, &h_fp8[size_t(n - 1) * H_], 1, n, &row0, 1, step.data(), step_h.data());
  s.low_precision_head = true;
  g->MtpForward(s);
  const std::vector<float> want = head_times(deq_, step_h.data());
  EXPECT_LE(rel_err(step.data(), want.data(), V_), 1e-4) << "chain step";
#endif
}

// Through the C ABI with the CUDA backend: with the FP8 draft head, greedy MTP decoding (k = 1..4, and k = 3 with
// a draft vocabulary) emits exactly plain greedy decoding. Prints the acceptance with either head.
TEST_P(CudaFp8Model, GreedyMtpWithFp8DraftHeadEqualsPlainGreedy) {
  if (!model_->weights.has_mtp) GTEST_SKIP() << "no MTP head";
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_CUDA;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, model_dir(GetParam()).c_str(), &mp), IMP_OK) << imp_last_error();
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 256;
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, m, &cp), IMP_OK) << imp_last_error();
  const int n_gen = is_fixture(GetParam()) ? int(golden_.greedy.size()) : 24;
  double acceptance = 0;
  auto generate = [&](int k, bool fp8, int draft_vocab) {
    ctx->engine->set_draft_head_fp8(fp8);  // both survive the reset in generate_ids
    ctx->engine->set_draft_vocab(draft_vocab);
    const std::vector<imp_token> out = imp::test::generate_ids(ctx, prompt_, n_gen, k);
    const imp::EngineStats& st = ctx->engine->stats();
    int64_t drafted = 0, accepted = 0;
    for (int i = 0; i < imp::kMaxDraft; ++i) drafted += st.drafted[i], accepted += st.accepted[i];
    acceptance = drafted ? double(accepted) / double(drafted) : 0.0;
    return out;
  };
  const std::vector<imp_token> plain = generate(0, false, 0);
  if (is_fixture(GetParam())) EXPECT_EQ(plain, golden_.greedy) << "GPU greedy vs transformers";
  for (int k = 1; k <= 4; ++k) {
    generate(k, false, 0);
    const double exact_acceptance = acceptance;
    EXPECT_EQ(generate(k, true, 0), plain) << "n_draft " << k;
    std::printf("[ %s ] k=%d acceptance: exact draft head %.3f, FP8 draft head %.3f\n", GetParam(), k, exact_acceptance,
                acceptance);
  }
  EXPECT_EQ(generate(3, true, V_ / 2), plain) << "n_draft 3, draft vocabulary " << V_ / 2;
  imp_context_free(ctx);
  imp_model_free(m);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaFp8Model,
                         ::testing::Values("tiny_f32", "tiny_bf16", "tiny_f16", "tiny_moe", "qwen35_dense", "qwen35_moe",
                                           "qwen3_next"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
