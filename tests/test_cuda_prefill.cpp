// The CUDA backend's long-prompt (prefill) paths against the per-row kernels and the CPU reference. Without a CUDA
// device (or in a build without the CUDA backend) every test skips with "no CUDA device: GPU tests skipped".
//   Kernels, outputs poisoned with NaN first so that unwritten memory shows:
//     the chunked Gated DeltaNet vs deltanet::Recurrent (o and the final state, T = 1..256, the fixtures' and the
//     real models' head dims) and a double-precision loop; tiled prefill attention vs attention::Attention and a
//     double-precision loop (head_dim 16..256, GQA groups 1, 2, 3, 4, 8, T 17..256, pos0 0 and 37); MoE grouping by
//     expert (exact) and the grouped experts vs ExpertSwiGLU / ExpertDown and a double-precision loop.
//   Models (random tiny models, dense and MoE, one with the real head dims, and the transformers fixtures): a
//   333-token prompt (two 256-row forward chunks, DeltaNet chunks of 64 with a partial one) gives logits at every
//   position within 2e-2 x max|logit| of the CPU backend, and so do the MTP head's rows over it; prefill in
//   pieces + decode equals one prefill.
#include "core/error.h"
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
#include <random>
#include <sys/stat.h>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"

#include "attention.cuh"
#include "attention_prefill.cuh"
#include "deltanet.cuh"
#include "deltanet_chunked.cuh"
#include "moe.cuh"
#include "moe_grouped.cuh"

#include <cuda_runtime_api.h>
#endif

using imp::test::have_gpu;
using imp::test::randn;
#if defined(IMP_HAVE_CUDA_KERNELS)
using imp::test::Dev;
#endif

namespace {

constexpr double kModelTol = 2e-2;   // x max |reference|

using imp::test::rel_err;

}  // namespace

/* ---------------------------------------------------------------------------------------------------------- */
/* Kernels                                                                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

#if defined(IMP_HAVE_CUDA_KERNELS)
namespace {

namespace kn = imp::kernels;

constexpr double kKernelTol = 1e-4;  // x max |reference|

double silu(double x) { return x / (1.0 + std::exp(-x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }


// ---- Gated DeltaNet ------------------------------------------------------------------------------------------

// Random DeltaNet inputs with realistic gates: g = A softplus(a + dt_bias) in about [-3, 0], beta in (0, 1).
struct DeltaNetInputs {
  std::vector<float> conv_out, b, a, A, dt, S;
};

DeltaNetInputs deltanet_inputs(kn::deltanet::Dims d, int T, std::mt19937& rng) {
  DeltaNetInputs in;
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  in.conv_out = randn(size_t(T) * d.conv_dim(), rng);
  in.b = randn(size_t(T) * d.HV, rng, 1.5f);
  in.A.resize(d.HV);
  in.dt = randn(d.HV, rng, 0.3f);
  for (auto& x : in.A) x = -(0.5f + ud(rng));  // -exp(A_log)
  in.a.resize(size_t(T) * d.HV);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < d.HV; ++j) {  // softplus(a + dt) uniform in (0, 2): g in (-3, 0)
      const float sp = 2.0f * ud(rng) + 1e-3f;
      in.a[size_t(t) * d.HV + j] = std::log(std::expm1(sp)) - in.dt[j];
    }
  in.S = randn(size_t(d.HV) * d.dk * d.dv, rng, 0.1f);  // a state left by earlier rows
  return in;
}

// The recurrence in double precision (the rule of deltanet.cuh).
void deltanet_reference(kn::deltanet::Dims d, int T, const DeltaNetInputs& in, std::vector<double>& o,
                        std::vector<double>& S) {
  const int cd = d.conv_dim(), r = d.HV / d.HK;
  S.assign(in.S.begin(), in.S.end());
  o.assign(size_t(T) * d.HV * d.dv, 0.0);
  std::vector<double> q(d.dk), k(d.dk);
  for (int j = 0; j < d.HV; ++j) {
    const int kh = j / r;
    double* Sj = &S[size_t(j) * d.dk * d.dv];
    for (int t = 0; t < T; ++t) {
      const float* row = &in.conv_out[size_t(t) * cd];
      double sq = 0, sk = 0;
      for (int i = 0; i < d.dk; ++i) {
        q[i] = row[kh * d.dk + i];
        k[i] = row[d.HK * d.dk + kh * d.dk + i];
        sq += q[i] * q[i];
        sk += k[i] * k[i];
      }
      for (int i = 0; i < d.dk; ++i) q[i] /= std::sqrt(sq + 1e-6) * std::sqrt(double(d.dk)), k[i] /= std::sqrt(sk + 1e-6);
      const double beta = sigmoid(in.b[size_t(t) * d.HV + j]);
      const double decay = std::exp(in.A[j] * softplus(double(in.a[size_t(t) * d.HV + j]) + in.dt[j]));
      for (int i = 0; i < d.dk * d.dv; ++i) Sj[i] *= decay;
      for (int dd = 0; dd < d.dv; ++dd) {
        double u = 0;
        for (int i = 0; i < d.dk; ++i) u += Sj[i * d.dv + dd] * k[i];
        const double delta = beta * (row[2 * d.HK * d.dk + j * d.dv + dd] - u);
        for (int i = 0; i < d.dk; ++i) Sj[i * d.dv + dd] += k[i] * delta;
        double acc = 0;
        for (int i = 0; i < d.dk; ++i) acc += Sj[i * d.dv + dd] * q[i];
        o[(size_t(t) * d.HV + j) * d.dv + dd] = acc;
      }
    }
  }
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

void check_deltanet_chunked(int HK, int HV, int dk, int dv, int T, bool with_reference, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "HK " << HK << " HV " << HV << " dk " << dk << " dv " << dv << " T " << T);
  std::mt19937 rng(seed);
  kn::deltanet::Dims d;
  d.HK = HK, d.HV = HV, d.dk = dk, d.dv = dv, d.K = 4;
  const DeltaNetInputs in = deltanet_inputs(d, T, rng);
  Dev<float> co(in.conv_out), bd(in.b), ad(in.a), Ad(in.A), dtd(in.dt), S_rec(in.S), S_chk(in.S),
      o_rec(size_t(T) * HV * dv), o_chk(size_t(T) * HV * dv), work(kn::deltanet::ChunkedWorkspaceFloats(T, d));
  CUDA_OK(kn::deltanet::Recurrent(co.p, bd.p, ad.p, Ad.p, dtd.p, T, d, S_rec.p, o_rec.p, nullptr, nullptr));
  CUDA_OK(kn::deltanet::Chunked(co.p, bd.p, ad.p, Ad.p, dtd.p, T, d, S_chk.p, o_chk.p, work.p, work.n, nullptr));
  const auto orec = o_rec.down(), ochk = o_chk.down(), srec = S_rec.down(), schk = S_chk.down();
  EXPECT_LE(rel_err(ochk.data(), orec.data(), orec.size()), kKernelTol) << "o vs Recurrent";
  EXPECT_LE(rel_err(schk.data(), srec.data(), srec.size()), kKernelTol) << "final S vs Recurrent";
  if (with_reference) {
    std::vector<double> o_ref, S_ref;
    deltanet_reference(d, T, in, o_ref, S_ref);
    const auto of = to_float(o_ref), sf = to_float(S_ref);
    EXPECT_LE(rel_err(ochk.data(), of.data(), of.size()), kKernelTol) << "o vs the double-precision loop";
    EXPECT_LE(rel_err(schk.data(), sf.data(), sf.size()), kKernelTol) << "final S vs the double-precision loop";
    EXPECT_LE(rel_err(orec.data(), of.data(), of.size()), kKernelTol) << "Recurrent vs the double-precision loop";
  }
}

TEST(CudaPrefillKernels, DeltaNetChunkedMatchesRecurrent) {
  REQUIRE_GPU();
  uint32_t seed = 100;
  for (int T : {1, 63, 64, 65, 200, 256}) {
    check_deltanet_chunked(1, 2, 8, 8, T, true, ++seed);      // tiny test models
    check_deltanet_chunked(2, 4, 16, 16, T, true, ++seed);    // the transformers fixtures
    check_deltanet_chunked(2, 4, 16, 24, T, false, ++seed);   // dv not a multiple of 32
    check_deltanet_chunked(1, 3, 12, 40, T, false, ++seed);   // dk not a multiple of 8, two column blocks
    check_deltanet_chunked(2, 4, 128, 128, T, T <= 65, ++seed);  // the real head dims
  }
  check_deltanet_chunked(16, 32, 128, 128, 256, false, ++seed);  // Qwen3.5-9B's linear layer, one 256-row chunk
  check_deltanet_chunked(1, 2, 256, 64, 130, false, ++seed);     // the largest dk
}

TEST(CudaPrefillKernels, DeltaNetChunkedRefusals) {
  REQUIRE_GPU();
  kn::deltanet::Dims d;
  d.HK = 1, d.HV = 1, d.dk = 264, d.dv = 8;
  float dummy = 0;
  EXPECT_EQ(kn::deltanet::Chunked(&dummy, &dummy, &dummy, &dummy, &dummy, 4, d, &dummy, &dummy, &dummy, 1 << 20, nullptr),
            cudaErrorInvalidValue);
  EXPECT_STREQ(kn::last_error_detail(), "Unsupported linear_key_head_dim for the chunked DeltaNet (1..256): 264");
  d.dk = 16;
  EXPECT_EQ(kn::deltanet::Chunked(&dummy, &dummy, &dummy, &dummy, &dummy, 100, d, &dummy, &dummy, &dummy,
                                  kn::deltanet::ChunkedWorkspaceFloats(64, d), nullptr),
            cudaErrorInvalidValue);
  EXPECT_STREQ(kn::last_error_detail(), "Unsupported rows for the chunked DeltaNet workspace given: 100");
  kn::clear_error_detail();
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// ---- Prefill attention ---------------------------------------------------------------------------------------

void check_prefill_attention(int hd, int nh, int nkv, int T, int pos0, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "hd " << hd << " nh " << nh << " nkv " << nkv << " T " << T << " pos0 " << pos0);
  std::mt19937 rng(seed);
  const int n_ctx = pos0 + T + 3;
  const float scale = 1.0f / std::sqrt(float(hd));
  // q large enough for peaked softmax rows; qg = [unused q | gate] per head as in q_proj's output.
  std::vector<float> q = randn(size_t(T) * nh * hd, rng, 2.0f), qg = randn(size_t(T) * nh * 2 * hd, rng),
                     kc = randn(size_t(n_ctx) * nkv * hd, rng), vc = randn(size_t(n_ctx) * nkv * hd, rng);
  Dev<float> qd(q), qgd(qg), kcd(kc), vcd(vc), out_pf(size_t(T) * nh * hd), out_ref(size_t(T) * nh * hd);
  kn::attention::AttentionParams ap;
  ap.q = qd.p, ap.gate = qgd.p + hd, ap.gate_head_stride = 2 * hd, ap.k_cache = kcd.p, ap.v_cache = vcd.p;
  ap.T = T, ap.pos0 = pos0, ap.n_head = nh, ap.n_head_kv = nkv, ap.head_dim = hd, ap.scale = scale;
  ap.out = out_pf.p;
  CUDA_OK(kn::attention::Prefill(ap, nullptr));
  ap.out = out_ref.p;  // no split workspace: one split per row
  CUDA_OK(kn::attention::Attention(ap, nullptr));

  std::vector<float> ref(size_t(T) * nh * hd);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < nh; ++h) {
      const int kvh = h / (nh / nkv), n_keys = pos0 + t + 1;
      const float* qr = &q[(size_t(t) * nh + h) * hd];
      std::vector<double> s(n_keys);
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < n_keys; ++j) {
        double acc = 0;
        for (int i = 0; i < hd; ++i) acc += double(qr[i]) * kc[(size_t(j) * nkv + kvh) * hd + i];
        s[j] = acc * scale;
        mx = std::max(mx, s[j]);
      }
      for (auto& e : s) sum += (e = std::exp(e - mx));
      for (int i = 0; i < hd; ++i) {
        double acc = 0;
        for (int j = 0; j < n_keys; ++j) acc += s[j] * vc[(size_t(j) * nkv + kvh) * hd + i];
        ref[(size_t(t) * nh + h) * hd + i] = float(acc / sum * sigmoid(qg[(size_t(t) * nh + h) * 2 * hd + hd + i]));
      }
    }
  const auto got = out_pf.down(), split = out_ref.down();
  EXPECT_LE(rel_err(got.data(), ref.data(), ref.size()), kKernelTol) << "prefill vs the double-precision loop";
  EXPECT_LE(rel_err(got.data(), split.data(), split.size()), kKernelTol) << "prefill vs Attention";
}

TEST(CudaPrefillKernels, AttentionPrefillMatchesSplitKernelAndCpu) {
  REQUIRE_GPU();
  uint32_t seed = 200;
  struct Heads {
    int nh, nkv;
  };
  for (int hd : {16, 32, 64, 128, 256})
    for (Heads g : {Heads{4, 1}, Heads{4, 2}, Heads{3, 1}, Heads{2, 2}})  // GQA groups 4, 2, 3 (unpacked), 1
      for (int T : {17, 64, 100, 256})
        for (int pos0 : {0, 37}) check_prefill_attention(hd, g.nh, g.nkv, T, pos0, ++seed);
  check_prefill_attention(256, 16, 4, 100, 300, ++seed);  // Qwen3.5-9B's heads
  check_prefill_attention(256, 16, 2, 64, 5, ++seed);     // Qwen3.6-35B-A3B's heads (group 8)
  check_prefill_attention(64, 32, 1, 33, 0, ++seed);      // group 32: one token per block
}

TEST(CudaPrefillKernels, AttentionPrefillRefusesUnsupportedHeadDim) {
  REQUIRE_GPU();
  kn::attention::AttentionParams ap;
  ap.T = 20, ap.n_head = 2, ap.n_head_kv = 1, ap.head_dim = 48;
  Dev<float> kc(64);
  ap.k_cache = kc.p, ap.v_cache = kc.p;
  EXPECT_EQ(kn::attention::Prefill(ap, nullptr), cudaErrorInvalidValue);
  EXPECT_STREQ(kn::last_error_detail(), "Unsupported head_dim: 48");
  kn::clear_error_detail();
}

// ---- MoE grouped by expert -----------------------------------------------------------------------------------

// Random expert matrices (E of rows x cols) of one storage type, each its own allocation (256-byte aligned, as
// the host places them), with a device pointer table and their exact fp32 values.
struct Experts {
  std::vector<void*> mats;
  std::vector<std::vector<float>> f32;
  Dev<const void*>* table = nullptr;
  Experts(kn::WType t, int E, int rows, int cols, std::mt19937& rng) {
    std::vector<const void*> ptrs;
    for (int e = 0; e < E; ++e) {
      std::vector<float> w = randn(size_t(rows) * cols, rng, 0.3f);
      const size_t n = w.size();
      void* p = nullptr;
      EXPECT_EQ(cudaMalloc(&p, n * 4), cudaSuccess);
      if (t == kn::WType::F32) {
        EXPECT_EQ(cudaMemcpy(p, w.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
      } else {  // round to the 16-bit type (truncate the mantissa; F16 from a value in its normal range)
        std::vector<uint16_t> bits(n);
        for (size_t i = 0; i < n; ++i) {
          uint32_t b;
          std::memcpy(&b, &w[i], 4);
          if (t == kn::WType::BF16) {
            bits[i] = uint16_t(b >> 16);
            b = uint32_t(bits[i]) << 16;
          } else {
            const uint32_t sign = b >> 31, exp = (b >> 23) & 0xFF, mant = b & 0x7FFFFF;
            const int e16 = std::clamp(int(exp) - 127 + 15, 1, 30);
            bits[i] = uint16_t((sign << 15) | (uint32_t(e16) << 10) | (mant >> 13));
            b = (sign << 31) | (uint32_t(e16 - 15 + 127) << 23) | ((mant >> 13) << 13);
          }
          std::memcpy(&w[i], &b, 4);
        }
        EXPECT_EQ(cudaMemcpy(p, bits.data(), n * 2, cudaMemcpyHostToDevice), cudaSuccess);
      }
      mats.push_back(p);
      ptrs.push_back(p);
      f32.push_back(std::move(w));
    }
    table = new Dev<const void*>(ptrs);
  }
  ~Experts() {
    for (void* p : mats) cudaFree(p);
    delete table;
  }
  const void* const* dev() const { return table->p; }
};

// Each token picks k distinct experts; expert 0 is picked by most tokens (more than one group of 8 slots) and the
// last expert by none.
std::vector<int32_t> skewed_routing(int T, int E, int k, std::mt19937& rng) {
  std::vector<int32_t> idx(size_t(T) * k);
  for (int t = 0; t < T; ++t) {
    std::vector<int> pool(E - 1);
    for (int e = 0; e < E - 1; ++e) pool[e] = e;
    std::shuffle(pool.begin() + 1, pool.end(), rng);
    if (rng() % 5 == 0) std::swap(pool[0], pool[k]);  // a few tokens skip expert 0
    std::shuffle(pool.begin(), pool.begin() + k, rng);
    for (int i = 0; i < k; ++i) idx[size_t(t) * k + i] = pool[i];
  }
  return idx;
}

void check_moe_grouped(kn::WType t, int E, int k, int H, int Fe, int T, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "wtype " << int(t) << " E " << E << " k " << k << " H " << H << " Fe " << Fe
                                    << " T " << T);
  std::mt19937 rng(seed);
  const int n_slots = T * k;
  Experts gate(t, E, Fe, H, rng), up(t, E, Fe, H, rng), down(t, E, H, Fe, rng);
  const std::vector<int32_t> idx = skewed_routing(T, E, k, rng);
  const std::vector<float> x = randn(size_t(T) * H, rng);
  Dev<int32_t> idxd(idx), offsets(E + 1), sorted(n_slots);
  Dev<float> xd(x), act_g(size_t(n_slots) * Fe), act_s(size_t(n_slots) * Fe), out_g(size_t(n_slots) * H),
      out_s(size_t(n_slots) * H);

  CUDA_OK(kn::moe::GroupByExpert(idxd.p, n_slots, E, offsets.p, sorted.p, nullptr));
  std::vector<int32_t> want_off(E + 1, 0), want_sorted;
  for (int e = 0; e < E; ++e) {
    for (int s = 0; s < n_slots; ++s)
      if (idx[s] == e) want_sorted.push_back(s);
    want_off[e + 1] = int32_t(want_sorted.size());
  }
  EXPECT_EQ(offsets.down(), want_off);
  EXPECT_EQ(sorted.down(), want_sorted);

  CUDA_OK(kn::moe::GroupedSwiGLU(gate.dev(), up.dev(), t, Fe, H, xd.p, k, offsets.p, sorted.p, E, act_g.p, nullptr));
  CUDA_OK(kn::moe::ExpertSwiGLU(gate.dev(), up.dev(), t, Fe, H, xd.p, idxd.p, T, k, act_s.p, nullptr));
  const auto ag = act_g.down(), as = act_s.down();
  std::vector<float> act_ref(size_t(n_slots) * Fe);
  for (int s = 0; s < n_slots; ++s)
    for (int f = 0; f < Fe; ++f) {
      const int e = idx[s];
      double g = 0, u = 0;
      for (int c = 0; c < H; ++c) {
        g += double(gate.f32[e][size_t(f) * H + c]) * x[size_t(s / k) * H + c];
        u += double(up.f32[e][size_t(f) * H + c]) * x[size_t(s / k) * H + c];
      }
      act_ref[size_t(s) * Fe + f] = float(silu(g) * u);
    }
  EXPECT_LE(rel_err(ag.data(), as.data(), as.size()), kKernelTol) << "GroupedSwiGLU vs ExpertSwiGLU";
  EXPECT_LE(rel_err(ag.data(), act_ref.data(), act_ref.size()), kKernelTol) << "GroupedSwiGLU vs the loop";

  // Both down projections read the same activations (the per-slot kernel's).
  CUDA_OK(kn::moe::GroupedDown(down.dev(), t, H, Fe, act_s.p, offsets.p, sorted.p, E, out_g.p, nullptr));
  CUDA_OK(kn::moe::ExpertDown(down.dev(), t, H, Fe, act_s.p, idxd.p, n_slots, out_s.p, nullptr));
  const auto og = out_g.down(), os = out_s.down();
  std::vector<float> out_ref(size_t(n_slots) * H);
  for (int s = 0; s < n_slots; ++s)
    for (int r = 0; r < H; ++r) {
      double acc = 0;
      for (int f = 0; f < Fe; ++f) acc += double(down.f32[idx[s]][size_t(r) * Fe + f]) * as[size_t(s) * Fe + f];
      out_ref[size_t(s) * H + r] = float(acc);
    }
  EXPECT_LE(rel_err(og.data(), os.data(), os.size()), kKernelTol) << "GroupedDown vs ExpertDown";
  EXPECT_LE(rel_err(og.data(), out_ref.data(), out_ref.size()), kKernelTol) << "GroupedDown vs the loop";
}

TEST(CudaPrefillKernels, MoeGroupedMatchesPerSlotExperts) {
  REQUIRE_GPU();
  uint32_t seed = 300;
  for (kn::WType t : {kn::WType::F32, kn::WType::F16, kn::WType::BF16}) {
    check_moe_grouped(t, 6, 2, 64, 64, 40, ++seed);     // the fixtures' shape
    check_moe_grouped(t, 5, 2, 32, 16, 33, ++seed);     // tiny test models
    check_moe_grouped(t, 16, 4, 36, 20, 100, ++seed);   // rows not a multiple of 8: the scalar path for 16-bit
    check_moe_grouped(t, 64, 8, 256, 128, 256, ++seed); // many experts, 8 per token, a full chunk
  }
  // Grouping alone at the MoE config's size: 256 experts, 2048 slots, and an empty batch.
  std::mt19937 rng(7);
  const int E = 256, k = 8, T = 256;
  std::vector<int32_t> idx = skewed_routing(T, E, k, rng);
  Dev<int32_t> idxd(idx), offsets(E + 1), sorted(idx.size());
  CUDA_OK(kn::moe::GroupByExpert(idxd.p, T * k, E, offsets.p, sorted.p, nullptr));
  std::vector<int32_t> off = offsets.down(), srt = sorted.down();
  ASSERT_EQ(off[E], T * k);
  for (int e = 0; e < E; ++e)
    for (int i = off[e]; i < off[e + 1]; ++i) {
      EXPECT_EQ(idx[srt[i]], e);
      if (i > off[e]) {
        EXPECT_LT(srt[i - 1], srt[i]);
      }
    }
  CUDA_OK(kn::moe::GroupByExpert(idxd.p, 0, E, offsets.p, sorted.p, nullptr));
  off = offsets.down();
  EXPECT_EQ(off, std::vector<int32_t>(E + 1, 0));
}

}  // namespace
#endif  // IMP_HAVE_CUDA_KERNELS

/* ---------------------------------------------------------------------------------------------------------- */
/* Whole models                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

namespace {

using imp::test::TempDir;
using imp::test::TinyModelOptions;

constexpr int kLongPrompt = 333;  // a 256-row forward chunk, then 77 rows (DeltaNet chunks of 64 + 13)
constexpr int kDecodeSteps = 8;
constexpr int kCtx = 400;

struct TinyModels {
  TempDir f32, bf16, moe, wide;
  TinyModels() {
    TinyModelOptions o;
    o.layers = 4;
    imp::test::write_tiny_model(f32.path(), o);
    o.dtype = "BF16";
    o.seed = 12;
    imp::test::write_tiny_model(bf16.path(), o);
    o.moe = true;
    o.experts = 16;
    o.experts_used = 4;
    o.seed = 13;
    imp::test::write_tiny_model(moe.path(), o);
    // The real models' head dims at a small width: DeltaNet dk = dv = 128, attention hd 128 in a group of 4 heads.
    TinyModelOptions w;
    w.layers = 4;
    w.dtype = "BF16";
    w.seed = 14;
    w.hidden = 128, w.n_head = 4, w.n_kv = 1, w.head_dim = 128;
    w.k_heads = 1, w.v_heads = 2, w.k_dim = 128, w.v_dim = 128;
    w.moe = true, w.experts = 8, w.experts_used = 2, w.ff_expert = 64, w.ff_shared = 96;
    imp::test::write_tiny_model(wide.path(), w);
  }
};

std::string model_dir(const std::string& name) {
  static TinyModels tiny;
  if (name == "tiny_f32") return tiny.f32.path();
  if (name == "tiny_bf16") return tiny.bf16.path();
  if (name == "tiny_moe") return tiny.moe.path();
  if (name == "tiny_wide_moe") return tiny.wide.path();
  return imp::test::fixtures_dir() + "/" + name;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng() % vocab);
  return t;
}

// Logits of every row of toks (n rows), and the hidden states if asked.
std::vector<float> all_logits(imp::ForwardPass& f, const int32_t* toks, int n, int vocab,
                              std::vector<float>* hidden = nullptr, int H = 0) {
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

class CudaPrefillModel : public ::testing::TestWithParam<const char*> {
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
    prompt_ = random_tokens(kLongPrompt + kDecodeSteps, V_, 23);
#endif
  }
  std::unique_ptr<imp::ForwardPass> cpu() { return imp::make_cpu_forward(*model_, kCtx, 0); }
  std::unique_ptr<imp::ForwardPass> gpu() {
#if defined(IMP_HAVE_CUDA_KERNELS)
    return imp::make_cuda_forward(*model_, kCtx, 0);
#else
    return nullptr;
#endif
  }
  std::unique_ptr<imp::Model> model_;
  std::vector<int32_t> prompt_;
  int V_ = 0, H_ = 0;
};

TEST_P(CudaPrefillModel, LongPromptLogitsMatchCpu) {
  const int n = kLongPrompt;
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
  std::printf("[ %s ] %d-token prompt, GPU vs CPU logits: max rel err %.3g\n", GetParam(), n, worst);

  // The MTP head over the same rows (its attention and FFN take the prefill paths too), fed the CPU's hidden.
  if (!model_->weights.has_mtp) return;
  std::vector<int32_t> next(prompt_.begin() + 1, prompt_.begin() + n + 1);
  std::vector<int32_t> rows(n);
  for (int i = 0; i < n; ++i) rows[i] = i;
  std::vector<float> lc(size_t(n) * V_, NAN), lg(size_t(n) * V_, NAN), hc(size_t(n) * H_, NAN), hg(size_t(n) * H_, NAN);
  c->PrefillMtp(imp::test::mtp_batch(next.data(), ch.data(), n, 0, rows.data(), n, lc.data(), hc.data()));
  g->PrefillMtp(imp::test::mtp_batch(next.data(), ch.data(), n, 0, rows.data(), n, lg.data(), hg.data()));
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&lg[size_t(p) * V_], &lc[size_t(p) * V_], V_), kModelTol) << "MTP row " << p;
  EXPECT_LE(rel_err(hg.data(), hc.data(), hc.size()), kModelTol) << "h_mtp";
}

// Prefill in two pieces (the second starting mid-chunk, so the chunked DeltaNet starts from a non-zero state and the
// attention tiles start at pos0 = 97), then single-token decode, against one prefill of everything.
TEST_P(CudaPrefillModel, PiecewisePrefillAndDecodeEqualOnePrefill) {
  const int n = kLongPrompt + kDecodeSteps, first = 97;
  auto whole = gpu();
  const std::vector<float> want = all_logits(*whole, prompt_.data(), n, V_);
  auto inc = gpu();
  std::vector<float> got = all_logits(*inc, prompt_.data(), first, V_);
  std::vector<float> rest = all_logits(*inc, prompt_.data() + first, kLongPrompt - first, V_);
  got.insert(got.end(), rest.begin(), rest.end());
  for (int p = kLongPrompt; p < n; ++p) {
    std::vector<float> row = all_logits(*inc, &prompt_[p], 1, V_);
    got.insert(got.end(), row.begin(), row.end());
  }
  ASSERT_EQ(got.size(), want.size());
  for (int p = 0; p < n; ++p) EXPECT_LE(rel_err(&got[size_t(p) * V_], &want[size_t(p) * V_], V_), kModelTol) << "position " << p;
  EXPECT_EQ(inc->n_past(), n);
  // And the decode rows against the CPU.
  auto c = cpu();
  const std::vector<float> cpu_logits = all_logits(*c, prompt_.data(), n, V_);
  for (int p = kLongPrompt; p < n; ++p)
    EXPECT_LE(rel_err(&got[size_t(p) * V_], &cpu_logits[size_t(p) * V_], V_), kModelTol) << "decode position " << p;
}

INSTANTIATE_TEST_SUITE_P(Models, CudaPrefillModel,
                         ::testing::Values("tiny_f32", "tiny_bf16", "tiny_moe", "tiny_wide_moe", "qwen35_dense",
                                           "qwen35_moe", "qwen3_next"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
