// The CUDA backend against the CPU reference. Without a CUDA device (or in a build without the CUDA backend)
// every test skips with "no CUDA device: GPU tests skipped".
//   Kernels: each against a plain CPU loop on random inputs, outputs poisoned with NaN first so that unwritten
//   memory shows: GEMV (F32/F16/BF16, T = 1..16, vector and scalar paths, and the opt-in tensor-core kernel; each
//   row of a T-row call equal bit for bit to the row alone), the norms, q/k norm + RoPE + KV write, attention
//   (split-K and single-split paths), the DeltaNet conv + recurrence (with per-row states, slot 0 the state before),
//   MoE top-k, argmax.
//   Models (random tiny models of every weight dtype, dense and MoE, and the transformers fixtures): logits at
//   every prompt position within 2e-2 x max|logit| of the CPU, decode after prefill = one prefill, MTP logits vs
//   the CPU, per-row rollback states = step-by-step states, snapshot/restore, greedy MTP k=1..4 = plain greedy,
//   sampled MTP with sampling on the device = the same with the host's sampling (same seed, token for token),
//   and the fixtures' 32 golden greedy tokens.
#include <imp/imp.h>

#include "api/handles.h"
#include "core/half.h"
#include "core/error.h"
#include "cpu/layers.h"
#include "cpu/ops.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "model/model.h"
#include "support/compare.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>
#include "support/golden.h"
#include "support/tiny_model.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <sys/stat.h>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"

#include "attention.cuh"
#include "deltanet.cuh"
#include "gemv.cuh"
#include "gemv_mma.cuh"
#include "moe.cuh"
#include "norm.cuh"
#include "rope.cuh"
#include "sampling.cuh"

#include <cuda_runtime_api.h>
#endif

using imp::test::have_gpu;
using imp::test::randn;
#if defined(IMP_HAVE_CUDA_KERNELS)
using imp::test::Dev;
#endif

namespace {

constexpr double kModelTol = 2e-2;  // x max |reference|

using imp::test::rel_err;

}  // namespace

/* ---------------------------------------------------------------------------------------------------------- */
/* Kernels                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

#if defined(IMP_HAVE_CUDA_KERNELS)
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

/* ---------------------------------------------------------------------------------------------------------- */
/* Whole models                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

namespace {

using imp::test::TempDir;
using imp::test::TinyModelOptions;

using imp::test::is_fixture;
std::string model_dir(const std::string& name) { return imp::test::cuda_test_model_dir(name); }

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % vocab);
  return t;
}

std::vector<float> all_logits(imp::ForwardPass& f, const int32_t* toks, int n, int vocab, std::vector<float>* hidden = nullptr,
                              int H = 0, bool keep = false) {
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
  b.keep_row_states = keep;
  f.Forward(b);
  return logits;
}

class CudaModel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!have_gpu()) GTEST_SKIP() << "no CUDA device: GPU tests skipped";
#if defined(IMP_HAVE_CUDA_KERNELS)
    const std::string dir = model_dir(GetParam());
    struct stat st;
    ASSERT_EQ(stat(dir.c_str(), &st), 0) << "fixture " << GetParam() << " is missing (" << dir
                                         << "): tools/fixtures/make_fixtures.py writes it";
    model_ = imp::load_model(dir);
    V_ = model_->config.n_vocab;
    H_ = model_->config.n_embd;
    if (is_fixture(GetParam())) {
      golden_ = imp::test::load_golden(GetParam());
      prompt_ = golden_.prompt;
    } else {
      prompt_ = random_tokens(40, V_, 17);  // > 16 rows: the cuBLAS path and the one-split attention
    }
#endif
  }
  std::unique_ptr<imp::ForwardPass> cpu(int n_ctx = 256) { return imp::make_cpu_forward(*model_, n_ctx, 0); }
  std::unique_ptr<imp::ForwardPass> gpu(int n_ctx = 256) {
#if defined(IMP_HAVE_CUDA_KERNELS)
    return imp::make_cuda_forward(*model_, n_ctx, 0);
#else
    return nullptr;
#endif
  }
  std::unique_ptr<imp::Model> model_;
  imp::test::Golden golden_;
  std::vector<int32_t> prompt_;
  int V_ = 0, H_ = 0;
};

TEST_P(CudaModel, PromptLogitsMatchCpu) {
  const int n = int(prompt_.size());
  auto c = cpu();
  auto g = gpu();
  std::vector<float> ch, gh;
  std::vector<float> want = all_logits(*c, prompt_.data(), n, V_, &ch, H_);
  std::vector<float> got = all_logits(*g, prompt_.data(), n, V_, &gh, H_);
  double worst = 0;
  for (int p = 0; p < n; ++p) {
    const double e = rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_);
    worst = std::max(worst, e);
    EXPECT_LE(e, kModelTol) << "position " << p;
  }
  EXPECT_LE(rel_err(gh.data(), ch.data(), ch.size()), kModelTol) << "hidden states";
  std::printf("[ %s ] GPU vs CPU prompt logits: max rel err %.3g\n", GetParam(), worst);
  if (is_fixture(GetParam())) {
    const imp::test::GoldenTensor& ref = golden_.tensor("logits");
    double wt = 0;
    for (int p = 0; p < n; ++p) wt = std::max(wt, rel_err(&got[size_t(p) * V_], ref.row(p), V_));
    EXPECT_LE(wt, kModelTol) << "GPU vs transformers";
  }
}

TEST_P(CudaModel, DecodeAfterPrefillEqualsOnePrefill) {
  const int n = int(prompt_.size()), half = n / 2;
  auto whole = gpu();
  std::vector<float> want = all_logits(*whole, prompt_.data(), n, V_);
  auto inc = gpu();
  std::vector<float> got = all_logits(*inc, prompt_.data(), half, V_);
  got.resize(size_t(n) * V_);
  for (int p = half; p < n; ++p) {
    std::vector<float> row = all_logits(*inc, &prompt_[p], 1, V_);
    std::copy(row.begin(), row.end(), got.begin() + size_t(p) * V_);
  }
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_), kModelTol) << "position " << p;
  EXPECT_EQ(inc->n_past(), n);
}

TEST_P(CudaModel, MtpMatchesCpu) {
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
  std::vector<float> lc(size_t(n) * V_, NAN), lg(size_t(n) * V_, NAN), hc(size_t(n) * H_, NAN), hg(size_t(n) * H_, NAN);
  c->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, lc.data(), hc.data()));
  g->PrefillMtp(imp::test::mtp_batch(next.data(), hidden.data(), n, 0, rows.data(), n, lg.data(), hg.data()));
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&lg[size_t(p) * V_], &lc[size_t(p) * V_], V_), kModelTol) << "MTP row " << p;
  // Two chain steps fed the CPU's h_mtp and the same draft token.
  std::vector<float> h(hc.end() - H_, hc.end());
  for (int s = 1; s <= 2; ++s) {
    int32_t tok = int32_t(std::max_element(lc.end() - V_, lc.end()) - (lc.end() - V_)), row0 = 0;
    std::vector<float> c_log(V_), g_log(V_, NAN), c_h(H_), g_h(H_, NAN);
    c->MtpForward(imp::test::mtp_batch(&tok, h.data(), 1, n - 1 + s, &row0, 1, c_log.data(), c_h.data()));
    g->MtpForward(imp::test::mtp_batch(&tok, h.data(), 1, n - 1 + s, &row0, 1, g_log.data(), g_h.data()));
    EXPECT_LE(rel_err(g_log.data(), c_log.data(), V_), kModelTol) << "chain step " << s;
    EXPECT_LE(rel_err(g_h.data(), c_h.data(), H_), kModelTol) << "chain step " << s;
    h = c_h;
    std::copy(c_log.begin(), c_log.end(), lc.end() - V_);
  }
  // The MTP KV cache agrees too.
  auto dc = c->DumpState(n + 2), dg = g->DumpState(n + 2);
  ASSERT_EQ(dc.size(), dg.size());
  for (size_t i = 0; i < dc.size(); ++i) {
    ASSERT_EQ(dc[i].size(), dg[i].size()) << "state tensor " << i;
    EXPECT_LE(rel_err(dg[i].data(), dc[i].data(), dc[i].size()), kModelTol) << "state tensor " << i;
  }
}

// keep_row_states + RollbackTo(p) leaves the state a step-by-step run reaches at p; Snapshot/Restore is exact.
TEST_P(CudaModel, RollbackRowStatesEqualStepByStep) {
  const int n0 = std::min<int>(int(prompt_.size()), 12), extra = 5;
  std::vector<int32_t> toks(prompt_.begin(), prompt_.begin() + n0);
  std::vector<int32_t> more = random_tokens(extra, V_, 99);
  auto step = gpu();
  all_logits(*step, toks.data(), n0, V_);
  std::vector<std::vector<std::vector<float>>> want{step->DumpState(0)};
  for (int i = 0; i < extra; ++i) {
    all_logits(*step, &more[i], 1, V_);
    want.push_back(step->DumpState(0));
  }
  auto g = gpu();
  all_logits(*g, toks.data(), n0, V_);
  auto snap = g->Snapshot();
  auto before = g->DumpState(0);
  all_logits(*g, more.data(), extra, V_, nullptr, 0, /*keep=*/true);
  for (int i = extra; i >= 0; --i) {
    g->RollbackTo(n0 + i);
    ASSERT_EQ(g->n_past(), n0 + i);
    auto got = g->DumpState(0);
    ASSERT_EQ(got.size(), want[i].size());
    for (size_t s = 0; s < got.size(); ++s) {
      ASSERT_EQ(got[s].size(), want[i][s].size());
      EXPECT_LE(rel_err(got[s].data(), want[i][s].data(), got[s].size()), kModelTol) << "row " << i << " tensor " << s;
    }
  }
  all_logits(*g, more.data(), 3, V_);
  g->Restore(*snap);
  auto after = g->DumpState(0);
  ASSERT_EQ(after.size(), before.size());
  for (size_t s = 0; s < after.size(); ++s) EXPECT_EQ(after[s], before[s]) << "tensor " << s;
  EXPECT_THROW(g->RollbackTo(n0 + 1), imp::Error);  // Restore drops the kept rows
}

// Through the C ABI with the CUDA backend: greedy MTP decoding (k = 1..4) emits exactly plain greedy decoding, and
// the fixtures' golden greedy tokens.
// Speculative sampling at temperature > 0 with the distributions, draws and accept/reject loop on the device
// (Engine::set_device_sampling, kernels/sampling.cuh) emits what the engine's host sampling emits from the same
// seed, token for token, drafts, verifies and plain sampled steps alike (the draws are the same uniforms; the
// distributions agree to rounding, so only a draw within ~1e-7 of a boundary could differ).
TEST_P(CudaModel, SampledMtpSameOnDeviceAsOnHost) {
  if (!model_->weights.has_mtp) GTEST_SKIP() << "no MTP head";
  struct Case { float temperature; int top_k; float top_p; float min_p; int k; };
  for (const Case& c : {Case{0.8f, 0, 1.0f, 0.0f, 3}, Case{1.2f, 20, 0.9f, 0.0f, 2}, Case{1.0f, 0, 1.0f, 0.05f, 4}}) {
    auto run = [&](bool on_device, std::vector<float>* q_out) {
      imp::Engine e(*model_, gpu(256));
      imp::SamplingParams sp;
      sp.temperature = c.temperature;
      sp.top_k = c.top_k;
      sp.top_p = c.top_p;
      sp.min_p = c.min_p;
      sp.seed = 7;
      e.set_sampling(sp);
      e.set_device_sampling(on_device);
      std::vector<float> logits(V_);
      e.prefill(prompt_.data(), int(prompt_.size()), false, logits.data());
      std::vector<int32_t> out{e.sample(logits.data())};
      for (int cycle = 0; out.size() < 64 && e.n_past() + c.k + 2 < 256; ++cycle) {
        if (cycle % 4 == 3) {  // a plain sampled step now and then
          out.push_back(e.decode(out.back()));
          continue;
        }
        int32_t d[8], toks[9];
        float q[8];
        int acc = 0;
        e.draft(out.back(), c.k, d, q);
        q_out->insert(q_out->end(), q, q + c.k);
        const int m = e.verify(d, c.k, toks, c.k + 1, &acc);
        out.insert(out.end(), toks, toks + m);
      }
      return out;
    };
    std::vector<float> q_host, q_dev;
    const std::vector<int32_t> host = run(false, &q_host), dev = run(true, &q_dev);
    EXPECT_EQ(host, dev) << "T " << c.temperature << " top_k " << c.top_k << " top_p " << c.top_p << " min_p " << c.min_p;
    ASSERT_EQ(q_host.size(), q_dev.size());
    for (size_t i = 0; i < q_host.size(); ++i) EXPECT_NEAR(q_host[i], q_dev[i], 1e-5) << "q of draft " << i;
  }
}

TEST_P(CudaModel, GreedyMtpParityAndGoldenTokens) {
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_CUDA;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, model_dir(GetParam()).c_str(), &mp), IMP_OK) << imp_last_error();
  EXPECT_EQ(m->backend, IMP_BACKEND_CUDA);
  imp_context_params cp = imp_context_default_params();
  cp.n_ctx = 256;
  imp_context* ctx = nullptr;
  ASSERT_EQ(imp_context_create(&ctx, m, &cp), IMP_OK) << imp_last_error();
  const int n_gen = is_fixture(GetParam()) ? int(golden_.greedy.size()) : 24;
  auto generate = [&](int k) {
    EXPECT_EQ(imp_context_reset(ctx), IMP_OK);
    imp_generate_params gp = imp_generate_default_params();
    gp.max_tokens = n_gen;
    gp.n_draft = k;
    gp.eos_token = -2;
    std::vector<imp_token> out(n_gen, -7);
    size_t n = 0;
    EXPECT_EQ(imp_generate(ctx, prompt_.data(), int32_t(prompt_.size()), &gp, nullptr, nullptr, out.data(), out.size(), &n,
                           nullptr),
              IMP_OK)
        << imp_last_error();
    return out;
  };
  const std::vector<imp_token> plain = generate(0);
  if (is_fixture(GetParam())) EXPECT_EQ(plain, golden_.greedy) << "GPU greedy vs transformers";
  if (model_->weights.has_mtp)
    for (int k = 1; k <= 4; ++k) EXPECT_EQ(generate(k), plain) << "n_draft " << k;
  imp_context_free(ctx);
  imp_model_free(m);
}

INSTANTIATE_TEST_SUITE_P(Models, CudaModel,
                         ::testing::Values("tiny_f32", "tiny_bf16", "tiny_f16", "tiny_moe", "qwen35_dense", "qwen35_moe",
                                           "qwen3_next"),
                         [](const auto& info) { return std::string(info.param); });

// Backend selection through the C ABI.
TEST(CudaBackend, Selection) {
  TempDir dir;
  imp::test::write_tiny_model(dir.path(), TinyModelOptions{});
  imp_model_params mp = imp_model_default_params();
  mp.backend = IMP_BACKEND_AUTO;
  imp_model* m = nullptr;
  ASSERT_EQ(imp_model_load(&m, dir.path().c_str(), &mp), IMP_OK) << imp_last_error();
  EXPECT_EQ(m->backend, have_gpu() ? IMP_BACKEND_CUDA : IMP_BACKEND_CPU);
  imp_model_free(m);
  mp.backend = IMP_BACKEND_CUDA;
  const imp_status s = imp_model_load(&m, dir.path().c_str(), &mp);
  if (have_gpu()) {
    EXPECT_EQ(s, IMP_OK) << imp_last_error();
    imp_model_free(m);
  } else {
#if defined(IMP_HAVE_CUDA_KERNELS)
    EXPECT_EQ(s, IMP_ERR_BACKEND);
#else
    EXPECT_EQ(s, IMP_ERR_UNSUPPORTED);
#endif
    EXPECT_EQ(m, nullptr);
  }
}

}  // namespace
