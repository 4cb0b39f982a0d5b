// The CUDA kernels each against a plain CPU loop on random inputs, outputs poisoned with NaN first so that
// unwritten memory shows. Without a CUDA device (or in a build without the CUDA backend) every test skips with
// "no CUDA device: GPU tests skipped".
//   GEMV: F32/F16/BF16, T = 1..16, vector and scalar paths, and the opt-in tensor-core kernel, against fp64; each
//   row of a T-row call equal bit for bit to the row alone; stacked segments equal separate calls.
//   The norms; q/k norm + RoPE + KV write and attention (split-K and single-split paths); the DeltaNet conv +
//   recurrence with per-row states (slot 0 the state before the batch); MoE top-k; argmax.
// The whole-model tests of the CUDA backend are in test_cuda.cpp.
#include "core/half.h"
#include "cpu/layers.h"
#include "cpu/ops.h"
#include "support/compare.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#if !defined(IMP_HAVE_CUDA_KERNELS)

TEST(CudaKernels, NeedTheCudaBackend) { GTEST_SKIP() << "no CUDA device: GPU tests skipped"; }

#else

#include "attention.cuh"
#include "deltanet.cuh"
#include "gemv.cuh"
#include "gemv_mma.cuh"
#include "moe.cuh"
#include "norm.cuh"
#include "rope.cuh"
#include "sampling.cuh"

#include <cuda_runtime_api.h>

using imp::test::Dev;
using imp::test::randn;
using imp::test::rel_err;

namespace {

namespace kn = imp::kernels;

// Random weights in a stored type, with their exact fp32 values for the reference.
struct HostWeights {
  std::vector<uint16_t> bits;  // F16 / BF16
  std::vector<float> f32;      // the values (F32 storage, or the reference)
};

HostWeights random_weights(kn::WType t, size_t n, std::mt19937& rng) {
  HostWeights w;
  w.f32 = randn(n, rng, 0.5f);
  if (t == kn::WType::F32) return w;
  w.bits.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (t == kn::WType::BF16) {
      uint32_t b;
      std::memcpy(&b, &w.f32[i], 4);
      w.bits[i] = uint16_t(b >> 16);
      w.f32[i] = imp::bf16_to_f32(w.bits[i]);
    } else {  // F16 from random fields: exponent in [-6, 1], any mantissa
      const uint16_t sign = uint16_t((rng() & 1) << 15), exp = uint16_t(9 + rng() % 8), mant = uint16_t(rng() & 0x3FF);
      w.bits[i] = uint16_t(sign | (exp << 10) | mant);
      w.f32[i] = imp::f16_to_f32(w.bits[i]);
    }
  }
  return w;
}

// y = x W^T through the default kernel (gemv::Gemv) or the tensor-core one (gemv_mma.cu, opt-in in the library).
cudaError_t gemv_by(bool mma, const void* w, kn::WType t, int rows, int cols, const float* x, int T, float* y) {
  if (!mma) return kn::gemv::Gemv(w, t, rows, cols, x, T, y, nullptr);
  kn::gemv::Segments out;
  out.y[0] = y;
  out.end[0] = rows;
  out.n = 1;
  return kn::gemv::GemvMma(w, cols, x, T, out, nullptr);
}

TEST(CudaKernels, GemvEveryDtypeAndRowCount) {
  REQUIRE_GPU();
  std::mt19937 rng(7);
  for (kn::WType t : {kn::WType::F32, kn::WType::F16, kn::WType::BF16}) {
    // 16-byte path (the tensor-core kernel too for BF16 at 256, 1024, 4096), 16-byte path with a short tail,
    // scalar path
    for (int cols : {256, 1024, 4096, 72, 35}) {
      const int rows = 37;
      HostWeights w = random_weights(t, size_t(rows) * cols, rng);
      Dev<float> wf(w.f32);
      Dev<uint16_t> wh(w.bits.empty() ? std::vector<uint16_t>(1) : w.bits);
      const void* wd = t == kn::WType::F32 ? static_cast<const void*>(wf.p) : static_cast<const void*>(wh.p);
      for (int T = 1; T <= 16; ++T) {
        for (bool mma : {false, true}) {
          std::vector<float> x = randn(size_t(T) * cols, rng);
          Dev<float> xd(x), yd(size_t(T) * rows);
          if (mma && !kn::gemv::MmaApplies(t, cols, wd, xd.p)) continue;
          CUDA_OK(gemv_by(mma, wd, t, rows, cols, xd.p, T, yd.p));
          std::vector<float> y = yd.down(), ref(size_t(T) * rows);
          for (int tt = 0; tt < T; ++tt)
            for (int r = 0; r < rows; ++r) {
              double s = 0;
              for (int c = 0; c < cols; ++c) s += double(w.f32[size_t(r) * cols + c]) * x[size_t(tt) * cols + c];
              ref[size_t(tt) * rows + r] = float(s);
            }
          EXPECT_LE(rel_err(y.data(), ref.data(), y.size()), 1e-5)
              << "dtype " << int(t) << " cols " << cols << " T " << T << " tensor cores " << mma;
        }
      }
    }
  }
  EXPECT_EQ(kn::gemv::Gemv(nullptr, kn::WType::F32, 4, 4, nullptr, 17, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_STREQ(kn::last_error_detail(), "Unsupported GEMV rows (1..16): 17");
  kn::clear_error_detail();
}

// A row's result does not depend on how many rows ride with it: each row of a T-row call equals, bit for bit, the
// same x row alone (verify rows must give what decoding them one by one gives). Every dtype on the default kernel,
// and BF16 on the tensor-core one (2, 4 and 8 warps per tile at these shapes).
TEST(CudaKernels, GemvRowDoesNotDependOnT) {
  REQUIRE_GPU();
  std::mt19937 rng(9);
  for (kn::WType t : {kn::WType::F32, kn::WType::F16, kn::WType::BF16}) {
    for (int cols : {512, 1024, 4096}) {
      const int rows = 100;
      HostWeights w = random_weights(t, size_t(rows) * cols, rng);
      Dev<float> wf(w.f32);
      Dev<uint16_t> wh(w.bits.empty() ? std::vector<uint16_t>(1) : w.bits);
      const void* wd = t == kn::WType::F32 ? static_cast<const void*>(wf.p) : static_cast<const void*>(wh.p);
      const std::vector<float> x = randn(size_t(16) * cols, rng);
      Dev<float> xd(x), yd(size_t(16) * rows), y1(rows);
      for (bool mma : {false, true}) {
        if (mma && !kn::gemv::MmaApplies(t, cols, wd, xd.p)) continue;
        for (int T : {2, 5, 16}) {
          CUDA_OK(gemv_by(mma, wd, t, rows, cols, xd.p, T, yd.p));
          const std::vector<float> y = yd.down();
          for (int r = 0; r < T; ++r) {
            CUDA_OK(gemv_by(mma, wd, t, rows, cols, xd.p + size_t(r) * cols, 1, y1.p));
            const std::vector<float> one = y1.down();
            EXPECT_EQ(0, std::memcmp(one.data(), y.data() + size_t(r) * rows, sizeof(float) * rows))
                << "dtype " << int(t) << " cols " << cols << " T " << T << " row " << r << " tensor cores " << mma;
          }
        }
      }
    }
  }
}

// Adjacent matrices in one launch (GemvSegments) give each output what its own Gemv gives: bit for bit on the
// CUDA-core kernel; the tensor-core kernel splits the columns over warps by the launch's shape, so there the same
// products may be summed in another grouping (fp32 rounding apart).
TEST(CudaKernels, GemvSegmentsEqualSeparateGemvs) {
  REQUIRE_GPU();
  std::mt19937 rng(8);
  for (const int cols : {264, 4096}) {
    for (bool mma : {false, true}) {
      if (mma && cols % 32) continue;
      const int seg_rows[4] = {45, 16, 3, 29}, rows = 45 + 16 + 3 + 29;
      HostWeights w = random_weights(kn::WType::BF16, size_t(rows) * cols, rng);
      Dev<uint16_t> wh(w.bits);
      for (int T : {1, 2, 4, 7, 16}) {
        std::vector<float> x = randn(size_t(T) * cols, rng);
        Dev<float> xd(x);
        std::vector<std::unique_ptr<Dev<float>>> ys, refs;  // poisoned (NaN) on allocation
        kn::gemv::Segments out;
        int r0 = 0;
        for (int g = 0; g < 4; ++g) {
          ys.push_back(std::make_unique<Dev<float>>(size_t(T) * seg_rows[g]));
          refs.push_back(std::make_unique<Dev<float>>(size_t(T) * seg_rows[g]));
          out.y[g] = ys.back()->p;
          out.end[g] = r0 + seg_rows[g];
          CUDA_OK(gemv_by(mma, wh.p + size_t(r0) * cols, kn::WType::BF16, seg_rows[g], cols, xd.p, T, refs.back()->p));
          r0 += seg_rows[g];
        }
        out.n = 4;
        CUDA_OK(mma ? kn::gemv::GemvMma(wh.p, cols, xd.p, T, out, nullptr)
                    : kn::gemv::GemvSegments(wh.p, kn::WType::BF16, cols, xd.p, T, out, nullptr));
        for (int g = 0; g < 4; ++g) {
          std::vector<float> a = ys[g]->down(), b = refs[g]->down();
          if (!mma)
            EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)))
                << "cols " << cols << " T " << T << " segment " << g;
          else
            EXPECT_LE(rel_err(a.data(), b.data(), a.size()), 1e-6) << "cols " << cols << " T " << T << " segment " << g;
        }
      }
    }
  }
  kn::gemv::Segments bad;
  bad.n = 5;
  EXPECT_EQ(kn::gemv::GemvSegments(nullptr, kn::WType::BF16, 8, nullptr, 1, bad, nullptr), cudaErrorInvalidValue);
  kn::clear_error_detail();
}

TEST(CudaKernels, Norms) {
  REQUIRE_GPU();
  std::mt19937 rng(3);
  const int T = 5, n = 300;
  const float eps = 1e-6f;
  std::vector<float> x = randn(size_t(T) * n, rng, 2.0f), br = randn(size_t(T) * n, rng), sc = randn(n, rng);
  Dev<float> xd(x), brd(br), scd(sc), yd(size_t(T) * n);
  CUDA_OK(kn::norm::RMSNorm(xd.p, n, scd.p, T, n, eps, yd.p, n, nullptr));
  std::vector<float> ref(size_t(T) * n);
  for (int t = 0; t < T; ++t) imp::cpu::rms_norm(&x[size_t(t) * n], sc.data(), n, eps, &ref[size_t(t) * n]);
  std::vector<float> y = yd.down();
  EXPECT_LE(rel_err(y.data(), ref.data(), y.size()), 1e-5);

  yd.poison();
  CUDA_OK(kn::norm::AddRMSNorm(xd.p, brd.p, scd.p, T, n, eps, yd.p, nullptr));
  std::vector<float> xs = x;
  for (size_t i = 0; i < xs.size(); ++i) xs[i] += br[i];
  for (int t = 0; t < T; ++t) imp::cpu::rms_norm(&xs[size_t(t) * n], sc.data(), n, eps, &ref[size_t(t) * n]);
  y = yd.down();
  std::vector<float> xsum = xd.down();
  EXPECT_LE(rel_err(y.data(), ref.data(), y.size()), 1e-5);
  EXPECT_LE(rel_err(xsum.data(), xs.data(), xs.size()), 1e-6);

  // AddRMSNorm's float4 path at one and two float4s per thread, and the scalar path (n % 4 != 0).
  for (int nn : {4096, 6000, 302}) {
    std::vector<float> x2 = randn(size_t(T) * nn, rng), b2 = randn(size_t(T) * nn, rng), s2 = randn(nn, rng);
    Dev<float> x2d(x2), b2d(b2), s2d(s2), y2d(size_t(T) * nn);
    CUDA_OK(kn::norm::AddRMSNorm(x2d.p, b2d.p, s2d.p, T, nn, eps, y2d.p, nullptr));
    std::vector<float> sum2 = x2, ref2(size_t(T) * nn);
    for (size_t i = 0; i < sum2.size(); ++i) sum2[i] += b2[i];
    for (int t = 0; t < T; ++t) imp::cpu::rms_norm(&sum2[size_t(t) * nn], s2.data(), nn, eps, &ref2[size_t(t) * nn]);
    std::vector<float> y2 = y2d.down(), xs2 = x2d.down();
    EXPECT_LE(rel_err(y2.data(), ref2.data(), y2.size()), 1e-5) << "n " << nn;
    EXPECT_LE(rel_err(xs2.data(), sum2.data(), sum2.size()), 1e-6) << "n " << nn;
    EXPECT_TRUE(y2d.guard_intact() && x2d.guard_intact()) << "n " << nn;
  }

  const int dv = 24, rows = 7;
  std::vector<float> o = randn(size_t(rows) * dv, rng), z = randn(size_t(rows) * dv, rng), w = randn(dv, rng);
  Dev<float> od(o), zd(z), wd(w), gy(size_t(rows) * dv);
  CUDA_OK(kn::norm::GatedRMSNorm(od.p, zd.p, wd.p, rows, dv, eps, gy.p, nullptr));
  std::vector<float> gref(size_t(rows) * dv);
  for (int r = 0; r < rows; ++r) {
    imp::cpu::rms_norm(&o[size_t(r) * dv], w.data(), dv, eps, &gref[size_t(r) * dv]);
    for (int d = 0; d < dv; ++d) gref[size_t(r) * dv + d] *= imp::cpu::silu(z[size_t(r) * dv + d]);
  }
  std::vector<float> g = gy.down();
  EXPECT_LE(rel_err(g.data(), gref.data(), g.size()), 1e-5);
}

// q/k norm + RoPE + KV write, then attention, both against plain loops (cpu::rope_neox for the rotation).
void check_attention(int hd, int n_rot, int nh, int nkv, int T, int pos0, uint32_t seed) {
  std::mt19937 rng(seed);
  const int n_ctx = pos0 + T + 5;
  const float eps = 1e-6f, theta = 1e7f;
  std::vector<float> qg = randn(size_t(T) * nh * 2 * hd, rng), k = randn(size_t(T) * nkv * hd, rng),
                     v = randn(size_t(T) * nkv * hd, rng), qn = randn(hd, rng, 0.2f), kn_ = randn(hd, rng, 0.2f);
  for (auto& s : qn) s += 1.0f;
  for (auto& s : kn_) s += 1.0f;
  // Keys and values already in the cache before pos0.
  std::vector<float> kc = randn(size_t(n_ctx) * nkv * hd, rng), vc = randn(size_t(n_ctx) * nkv * hd, rng);
  std::vector<float> inv_freq(std::max(1, n_rot / 2));
  for (int i = 0; i < n_rot / 2; ++i) inv_freq[i] = float(1.0 / std::pow(double(theta), double(2 * i) / double(n_rot)));

  Dev<float> qgd(qg), kd(k), vd(v), qnd(qn), knd(kn_), ifd(inv_freq), qd(size_t(T) * nh * hd), kcd(kc), vcd(vc),
      out(size_t(T) * nh * hd);
  kn::rope::QkNormRopeParams rp;
  rp.qg = qgd.p, rp.k = kd.p, rp.v = vd.p, rp.q_norm = qnd.p, rp.k_norm = knd.p, rp.inv_freq = ifd.p;
  rp.q = qd.p, rp.k_cache = kcd.p, rp.v_cache = vcd.p;
  rp.T = T, rp.pos0 = pos0, rp.n_head = nh, rp.n_head_kv = nkv, rp.head_dim = hd, rp.n_rot = n_rot, rp.eps = eps;
  CUDA_OK(kn::rope::QkNormRopeKvWrite(rp, nullptr));
  const int max_splits = 8;
  Dev<float> wo(kn::attention::WorkspaceOFloats(nh, hd, max_splits)), wml(kn::attention::WorkspaceMlFloats(nh, max_splits));
  kn::attention::AttentionParams ap;
  ap.q = qd.p, ap.gate = qgd.p + hd, ap.gate_head_stride = 2 * hd, ap.k_cache = kcd.p, ap.v_cache = vcd.p, ap.out = out.p;
  ap.T = T, ap.pos0 = pos0, ap.n_head = nh, ap.n_head_kv = nkv, ap.head_dim = hd, ap.scale = 1.0f / std::sqrt(float(hd));
  ap.work_o = wo.p, ap.work_ml = wml.p, ap.max_splits = max_splits;
  ap.split_keys = std::max(32, ((n_ctx + max_splits - 1) / max_splits + 31) / 32 * 32);
  CUDA_OK(kn::attention::Attention(ap, nullptr));

  // Reference.
  std::vector<float> q(size_t(T) * nh * hd);
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < nh; ++h) {
      imp::cpu::rms_norm(&qg[(size_t(t) * nh + h) * 2 * hd], qn.data(), hd, eps, &q[(size_t(t) * nh + h) * hd]);
      imp::cpu::rope_neox(&q[(size_t(t) * nh + h) * hd], n_rot, pos0 + t, theta);
    }
    for (int h = 0; h < nkv; ++h) {
      float* kr = &kc[(size_t(pos0 + t) * nkv + h) * hd];
      imp::cpu::rms_norm(&k[(size_t(t) * nkv + h) * hd], kn_.data(), hd, eps, kr);
      imp::cpu::rope_neox(kr, n_rot, pos0 + t, theta);
      std::copy_n(&v[(size_t(t) * nkv + h) * hd], hd, &vc[(size_t(pos0 + t) * nkv + h) * hd]);
    }
  }
  std::vector<float> ref(size_t(T) * nh * hd);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < nh; ++h) {
      const int kvh = h / (nh / nkv), n_keys = pos0 + t + 1;
      std::vector<double> s(n_keys);
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < n_keys; ++j) {
        double d = 0;
        for (int i = 0; i < hd; ++i) d += double(q[(size_t(t) * nh + h) * hd + i]) * kc[(size_t(j) * nkv + kvh) * hd + i];
        s[j] = d / std::sqrt(double(hd));
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) sum += (e = std::exp(e - mx));
      for (int i = 0; i < hd; ++i) {
        double o = 0;
        for (int j = 0; j < n_keys; ++j) o += s[j] / sum * vc[(size_t(j) * nkv + kvh) * hd + i];
        ref[(size_t(t) * nh + h) * hd + i] = float(o * imp::cpu::sigmoid(qg[(size_t(t) * nh + h) * 2 * hd + hd + i]));
      }
    }
  std::vector<float> qgot = qd.down(), kgot = kcd.down(), got = out.down();
  EXPECT_LE(rel_err(qgot.data(), q.data(), q.size()), 1e-5) << "q, hd " << hd;
  EXPECT_LE(rel_err(kgot.data() + size_t(pos0) * nkv * hd, kc.data() + size_t(pos0) * nkv * hd, size_t(T) * nkv * hd), 1e-5);
  EXPECT_LE(rel_err(got.data(), ref.data(), ref.size()), 1e-4) << "hd " << hd << " T " << T << " pos0 " << pos0;
}

TEST(CudaKernels, RopeAndAttention) {
  REQUIRE_GPU();
  check_attention(64, 16, 4, 2, 1, 300, 1);   // decode, several splits
  check_attention(64, 16, 4, 2, 5, 257, 2);   // verify rows
  check_attention(16, 8, 2, 1, 16, 40, 3);    // tiny head dim
  check_attention(128, 32, 4, 1, 40, 0, 4);   // prefill path (one split per row)
  check_attention(256, 64, 2, 2, 3, 70, 5);
}

// The conv + recurrence against the CPU reference's loops, with per-row states.
void check_deltanet(int dk, int dv, int T, unsigned seed) {
  SCOPED_TRACE("dk " + std::to_string(dk) + ", dv " + std::to_string(dv) + ", T " + std::to_string(T));
  std::mt19937 rng(seed);
  kn::deltanet::Dims d;
  d.HK = 2, d.HV = 4, d.dk = dk, d.dv = dv, d.K = 4;
  const int cd = d.conv_dim(), r = d.HV / d.HK;
  std::vector<float> mixed = randn(size_t(T) * cd, rng), taps = randn(size_t(cd) * d.K, rng, 0.5f),
                     conv = randn(size_t(d.K - 1) * cd, rng), b = randn(size_t(T) * d.HV, rng),
                     a = randn(size_t(T) * d.HV, rng), A = randn(d.HV, rng, 0.3f), dt = randn(d.HV, rng, 0.3f),
                     S = randn(size_t(d.HV) * d.dk * d.dv, rng, 0.1f);
  for (auto& x : A) x = -std::exp(x);
  Dev<float> md(mixed), tapd(taps), convd(conv), bd(b), ad(a), Ad(A), dtd(dt), Sd(S), co(size_t(T) * cd),
      od(size_t(T) * d.HV * d.dv), rowc(size_t(T + 1) * (d.K - 1) * cd), rowS(size_t(T + 1) * S.size());
  CUDA_OK(kn::deltanet::ConvUpdate(md.p, tapd.p, T, d, convd.p, co.p, rowc.p, nullptr));
  CUDA_OK(kn::deltanet::Recurrent(co.p, bd.p, ad.p, Ad.p, dtd.p, T, d, Sd.p, od.p, rowS.p, nullptr));

  // Reference, written out as in lib/cpu/deltanet.cpp.
  // Row states: slot 0 the state before the batch, slot t + 1 the state after row t.
  std::vector<float> cout_(size_t(T) * cd), rc(size_t(T + 1) * (d.K - 1) * cd), win(d.K - 1 + T);
  std::copy(conv.begin(), conv.end(), rc.begin());
  for (int ch = 0; ch < cd; ++ch) {
    for (int i = 0; i < d.K - 1; ++i) win[i] = conv[size_t(i) * cd + ch];
    for (int t = 0; t < T; ++t) win[d.K - 1 + t] = mixed[size_t(t) * cd + ch];
    for (int t = 0; t < T; ++t) {
      float s = 0;
      for (int k = 0; k < d.K; ++k) s += taps[size_t(ch) * d.K + k] * win[t + k];
      cout_[size_t(t) * cd + ch] = imp::cpu::silu(s);
      for (int i = 0; i < d.K - 1; ++i) rc[(size_t(t + 1) * (d.K - 1) + i) * cd + ch] = win[t + 1 + i];
    }
    for (int i = 0; i < d.K - 1; ++i) conv[size_t(i) * cd + ch] = win[T + i];
  }
  std::vector<float> o(size_t(T) * d.HV * d.dv), rS(size_t(T + 1) * S.size());
  std::copy(S.begin(), S.end(), rS.begin());
  for (int j = 0; j < d.HV; ++j) {
    const int kh = j / r;
    float* Sj = &S[size_t(j) * d.dk * d.dv];
    for (int t = 0; t < T; ++t) {
      const float* row = &cout_[size_t(t) * cd];
      std::vector<float> q(row + kh * d.dk, row + (kh + 1) * d.dk), k(row + d.HK * d.dk + kh * d.dk, row + d.HK * d.dk + (kh + 1) * d.dk);
      float sq = 0, sk = 0;
      for (int i = 0; i < d.dk; ++i) sq += q[i] * q[i], sk += k[i] * k[i];
      for (int i = 0; i < d.dk; ++i) q[i] *= 1.0f / std::sqrt(sq + 1e-6f) / std::sqrt(float(d.dk)), k[i] *= 1.0f / std::sqrt(sk + 1e-6f);
      const float beta = imp::cpu::sigmoid(b[size_t(t) * d.HV + j]);
      const float decay = std::exp(A[j] * imp::cpu::softplus(a[size_t(t) * d.HV + j] + dt[j]));
      for (int i = 0; i < d.dk * d.dv; ++i) Sj[i] *= decay;
      for (int dd = 0; dd < d.dv; ++dd) {
        float u = 0;
        for (int i = 0; i < d.dk; ++i) u += Sj[i * d.dv + dd] * k[i];
        const float delta = beta * (row[2 * d.HK * d.dk + j * d.dv + dd] - u);
        for (int i = 0; i < d.dk; ++i) Sj[i * d.dv + dd] += k[i] * delta;
      }
      for (int dd = 0; dd < d.dv; ++dd) {
        float acc = 0;
        for (int i = 0; i < d.dk; ++i) acc += Sj[i * d.dv + dd] * q[i];
        o[(size_t(t) * d.HV + j) * d.dv + dd] = acc;
      }
      std::copy_n(Sj, d.dk * d.dv, &rS[(size_t(t + 1) * d.HV + j) * d.dk * d.dv]);
    }
  }
  auto g_co = co.down(), g_o = od.down(), g_S = Sd.down(), g_conv = convd.down(), g_rc = rowc.down(), g_rS = rowS.down();
  EXPECT_LE(rel_err(g_co.data(), cout_.data(), cout_.size()), 1e-5);
  EXPECT_LE(rel_err(g_conv.data(), conv.data(), conv.size()), 0.0);
  EXPECT_LE(rel_err(g_rc.data(), rc.data(), rc.size()), 0.0);
  EXPECT_LE(rel_err(g_o.data(), o.data(), o.size()), 1e-4);
  EXPECT_LE(rel_err(g_S.data(), S.data(), S.size()), 1e-4);
  EXPECT_LE(rel_err(g_rS.data(), rS.data(), rS.size()), 1e-4);
}

TEST(CudaKernels, DeltaNetMatchesRecurrence) {
  REQUIRE_GPU();
  check_deltanet(16, 24, 6, 11);    // register kernel, a partial column tile
  check_deltanet(128, 128, 5, 12);  // register kernel at the 9B-like head size
  check_deltanet(256, 40, 3, 13);   // register kernel, the largest key head
  check_deltanet(20, 24, 4, 14);    // dk/4 = 5: the shared-memory kernel
  check_deltanet(18, 16, 2, 15);    // dk not a multiple of 4: the shared-memory kernel
}

TEST(CudaKernels, MoeTopKAndArgmax) {
  REQUIRE_GPU();
  std::mt19937 rng(5);
  const int T = 3, E = 40, k = 4;
  std::vector<float> logits = randn(size_t(T) * E, rng);
  logits[7] = logits[9] = 5.0f;  // a tie: the lower index comes first
  Dev<float> ld(logits), wd(size_t(T) * k);
  Dev<int32_t> idd(size_t(T) * k);
  CUDA_OK(kn::moe::TopK(ld.p, T, E, k, true, idd.p, wd.p, nullptr));
  auto idx = idd.down();
  auto w = wd.down();
  for (int t = 0; t < T; ++t) {
    std::vector<int> order(E);
    for (int e = 0; e < E; ++e) order[e] = e;
    const float* p = &logits[size_t(t) * E];
    std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return p[x] > p[y]; });
    double norm = 0;
    for (int i = 0; i < k; ++i) norm += std::exp(double(p[order[i]]));
    for (int i = 0; i < k; ++i) {
      EXPECT_EQ(idx[size_t(t) * k + i], order[i]) << "row " << t << " slot " << i;
      EXPECT_NEAR(w[size_t(t) * k + i], std::exp(double(p[order[i]])) / norm, 1e-5);
    }
  }
  const int V = 50000, rows = 3;
  std::vector<float> big = randn(size_t(rows) * V, rng);
  big[123] = big[4567] = 9.0f;
  Dev<float> bd(big);
  Dev<int32_t> am(rows);
  CUDA_OK(kn::sampling::Argmax(bd.p, rows, V, am.p, nullptr));
  auto got = am.down();
  for (int r = 0; r < rows; ++r)
    EXPECT_EQ(got[r], int(std::max_element(big.begin() + size_t(r) * V, big.begin() + size_t(r + 1) * V) - (big.begin() + size_t(r) * V)));
}

}  // namespace

#endif  // IMP_HAVE_CUDA_KERNELS
