// Sampling on the device (kernels/sampling.cuh) against the host code it stands in for. Without a CUDA device (or
// in a build without the CUDA backend) every test skips with "no CUDA device: GPU tests skipped".
//   Distribution: random logits (n_vocab 1000 and 248320; rows of plain, tied (+0/-0 among the top), -inf and
//   hugely negative, and peaked logits; padded rows on both sides) for temperature alone, top-k, top-p, min-p, all
//   combined, temperatures 0.3 and 1.5 and the edge values (top-k 1 and >= n_vocab, top-p 0, min-p > 1): every
//   prob within 1e-6 of imp::Sampler::distribution and exactly 0 where the host's is (and only there); the
//   padding is never written.
//   Draw: 200 uniforms from imp::Rng per set of rows give Sampler::draw's ids (Sampler seeded alike); hand-made
//   rows with uniforms on exact dyadic boundaries, 0 and the largest uniform below 1, and an all-zero row.
//   SpeculativeAccept: 400 random verify steps at n_vocab 1000 (0..16 drafts) and 6 at 248320 (drafts drawn from
//   q, q's argmax, random ids, ids where p is 0; q close to p, far from it, equal to it, limited to a draft
//   vocabulary) give the n_accepted, next token and uniforms used of a host replica of Engine::verify's sampling
//   loop on the same Sampler stream; all-accepted steps, residual draws and all-zero residuals are each seen.
//   End to end: Distribution + Draw + SpeculativeAccept for 16 drafts at n_vocab 248320 captured in a CUDA
//   graph and replayed with fresh uniforms equal the host. Refusals: bad shapes, temperature and work size
//   return cudaErrorInvalidValue and write nothing; DistributionWorkBytes for 17 rows covers 1..16.
#include "engine/sampler.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#if !defined(IMP_HAVE_CUDA_KERNELS)

TEST(CudaSamplingKernels, NeedTheCudaBackend) { GTEST_SKIP() << "no CUDA device: GPU tests skipped"; }

#else

#include "sampling.cuh"

#include <cuda_runtime_api.h>

namespace {

namespace ks = imp::kernels::sampling;
using imp::test::Dev;

constexpr int kBigVocab = 248320;  // Qwen3.5's

struct Case {
  const char* name;
  float temperature;
  int top_k;
  float top_p;
  float min_p;
};

const Case kCases[] = {
    {"temperature", 1.0f, 0, 1.0f, 0.0f},    {"top_k 20", 1.0f, 20, 1.0f, 0.0f},
    {"top_p 0.9", 1.0f, 0, 0.9f, 0.0f},      {"min_p 0.05", 1.0f, 0, 1.0f, 0.05f},
    {"combined", 0.7f, 20, 0.95f, 0.05f},    {"temperature 0.3", 0.3f, 0, 1.0f, 0.0f},
    {"temperature 1.5", 1.5f, 0, 1.0f, 0.0f}, {"0.3 combined", 0.3f, 40, 0.9f, 0.02f},
    {"1.5 top_p 0.5", 1.5f, 0, 0.5f, 0.0f},  {"top_k 1", 1.0f, 1, 1.0f, 0.0f},
    {"top_p 0", 1.0f, 0, 0.0f, 0.0f},        {"min_p above 1", 1.0f, 0, 1.0f, 2.0f},
    {"top_k past the vocabulary", 1.0f, 1 << 20, 1.0f, 0.0f},
};

imp::SamplingParams host_params(const Case& c, uint64_t seed = 0) {
  imp::SamplingParams p;
  p.temperature = c.temperature, p.top_k = c.top_k, p.top_p = c.top_p, p.min_p = c.min_p, p.seed = seed;
  return p;
}
ks::Params device_params(const Case& c) { return ks::Params{c.temperature, c.top_k, c.top_p, c.min_p}; }

// Row r of kind r % 4: plain; tied (multiples of 0.5 up to 0, so the top is a wide tie of +0 and -0);
// -inf / -1e30 / -FLT_MAX / -1e4 among plain values; peaked (two equal maxima, the lower id first in the order).
std::vector<float> make_logits(int rows, int n_vocab, int ld, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(rows) * ld, NAN);  // the padding is NaN: reading it would show
  for (int r = 0; r < rows; ++r) {
    float* row = &x[size_t(r) * ld];
    for (int i = 0; i < n_vocab; ++i) row[i] = 3.0f * nd(rng);
    if (r % 4 == 1) {
      for (int i = 0; i < n_vocab; ++i) {
        row[i] = std::min(0.0f, std::round(row[i] * 0.7f) * 0.5f);
        if (row[i] == 0.0f && rng() % 2) row[i] = -0.0f;
      }
    } else if (r % 4 == 2) {
      for (int i = 0; i < n_vocab; i += 7) row[i] = -INFINITY;
      for (int i = 3; i < n_vocab; i += 11) row[i] = -1e30f;
      for (int i = 5; i < n_vocab; i += 13) row[i] = -FLT_MAX;
      for (int i = 1; i < n_vocab; i += 17) row[i] = -1e4f;
    } else if (r % 4 == 3) {
      row[n_vocab / 2] = row[5] = 20.0f;
      row[n_vocab / 3] = 19.5f;
    }
  }
  return x;
}

std::vector<float> host_distribution(const Case& c, const float* logits, int n_vocab) {
  std::vector<float> p;
  imp::Sampler(host_params(c)).distribution(logits, n_vocab, p);
  return p;
}

// Sampler::draw with a given uniform (for uniforms that no Rng stream hands out).
int host_draw(const std::vector<float>& probs, double u) { return imp::Sampler::draw_at(probs, u); }

bool all_ff(const void* p, size_t bytes) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  return std::all_of(b, b + bytes, [](unsigned char x) { return x == 0xFF; });
}

// Device probs against the host's: within 1e-6, and zero exactly where the host's are; the padding untouched.
::testing::AssertionResult same_distribution(const std::vector<float>& dev, const std::vector<float>& host,
                                             int n_vocab) {
  int bad = 0;
  std::ostringstream first;
  double sum = 0;
  for (int i = 0; i < n_vocab; ++i) {
    const float d = dev[i], h = host[i];
    sum += d;
    const bool ok = h == 0.0f ? d == 0.0f : (d > 0.0f && std::fabs(double(d) - double(h)) <= 1e-6);
    if (!ok && bad++ < 5) first << " [" << i << "] device " << d << " host " << h << ";";
  }
  if (bad) return ::testing::AssertionFailure() << bad << " of " << n_vocab << " probs differ:" << first.str();
  if (std::fabs(sum - 1.0) > 1e-5) return ::testing::AssertionFailure() << "device probs sum to " << sum;
  return ::testing::AssertionSuccess();
}

// Distribution of `rows` rows on the device (logits with row stride ld_in, probs with ld_out), checked row by row.
void check_distribution(const Case& c, const std::vector<float>& logits, int rows, int n_vocab, int ld_in,
                        int ld_out) {
  SCOPED_TRACE(::testing::Message() << c.name << ", n_vocab " << n_vocab << ", " << rows << " rows");
  const size_t work_bytes = ks::DistributionWorkBytes(rows, n_vocab);
  ASSERT_GT(work_bytes, 0u);
  Dev<float> x(logits), probs(size_t(rows) * ld_out);
  Dev<unsigned char> work(work_bytes);
  CUDA_OK(ks::Distribution(x.p, rows, n_vocab, ld_in, device_params(c), work.p, work_bytes, probs.p, ld_out,
                           nullptr));
  const std::vector<float> got = probs.down();
  EXPECT_TRUE(probs.guard_intact());
  for (int r = 0; r < rows; ++r) {
    const std::vector<float> want = host_distribution(c, &logits[size_t(r) * ld_in], n_vocab);
    const float* row = &got[size_t(r) * ld_out];
    EXPECT_TRUE(same_distribution(std::vector<float>(row, row + n_vocab), want, n_vocab)) << "row " << r;
    EXPECT_TRUE(all_ff(row + n_vocab, size_t(ld_out - n_vocab) * sizeof(float))) << "row " << r << "'s padding";
  }
}

TEST(CudaSamplingKernels, DistributionIsTheSamplers) {
  REQUIRE_GPU();
  for (int n_vocab : {1000, kBigVocab}) {
    const int rows = 4, ld_in = n_vocab + 3, ld_out = n_vocab + 5;
    const std::vector<float> logits = make_logits(rows, n_vocab, ld_in, 7u + uint32_t(n_vocab));
    for (const Case& c : kCases) check_distribution(c, logits, rows, n_vocab, ld_in, ld_out);
  }
  // The most rows a verify step has (16 drafts + 1), which also sets the most key bits of the sort.
  const Case& combined = kCases[4];
  check_distribution(combined, make_logits(17, 1000, 1000, 99), 17, 1000, 1000, 1000);
}

// Draws `uniforms.size()` ids on the device, row t % rows for uniform t, one launch per `rows` uniforms.
std::vector<int> device_draws(const std::vector<std::vector<float>>& rows, const std::vector<double>& uniforms) {
  const int n_rows = int(rows.size()), n_vocab = int(rows[0].size()), ld = n_vocab + 7;
  std::vector<float> m(size_t(n_rows) * ld, NAN);
  for (int r = 0; r < n_rows; ++r) std::copy(rows[r].begin(), rows[r].end(), m.begin() + size_t(r) * ld);
  Dev<float> probs(m);
  std::vector<int> ids;
  for (size_t t = 0; t < uniforms.size(); t += n_rows) {
    const int n = int(std::min<size_t>(n_rows, uniforms.size() - t));
    Dev<double> u(std::vector<double>(uniforms.begin() + t, uniforms.begin() + t + n));
    Dev<int32_t> out(n);
    EXPECT_EQ(ks::Draw(probs.p, n, n_vocab, ld, u.p, out.p, nullptr), cudaSuccess) << imp::kernels::last_error_detail();
    for (int32_t id : out.down()) ids.push_back(id);
    EXPECT_TRUE(out.guard_intact());
  }
  return ids;
}

TEST(CudaSamplingKernels, DrawIsTheSamplers) {
  REQUIRE_GPU();
  for (int n_vocab : {1000, kBigVocab}) {
    SCOPED_TRACE(::testing::Message() << "n_vocab " << n_vocab);
    const int n_rows = 5;
    const std::vector<float> logits = make_logits(n_rows, n_vocab, n_vocab, 31);
    std::vector<std::vector<float>> rows;
    for (int r = 0; r < n_rows; ++r)  // dense (temperature alone) and sparse (combined) rows
      rows.push_back(host_distribution(kCases[r % 2 ? 4 : 0], &logits[size_t(r) * n_vocab], n_vocab));
    // An unnormalised row with zeros, as the residual max(p - q, 0) is.
    std::mt19937 rng(5);
    std::vector<float> residual(n_vocab, 0.0f);
    for (int i = 0; i < n_vocab; ++i)
      if (rng() % 3 == 0) residual[i] = float(rng() % 1000) * 1e-6f;
    rows.push_back(residual);

    const uint64_t seed = 1234 + n_vocab;
    imp::Rng stream(seed);
    std::vector<double> uniforms(200);
    for (double& u : uniforms) u = stream.uniform();
    const std::vector<int> got = device_draws(rows, uniforms);
    imp::SamplingParams sp;
    sp.temperature = 1.0f, sp.seed = seed;
    imp::Sampler sampler(sp);  // the same stream: its t-th draw uses uniforms[t]
    for (size_t t = 0; t < uniforms.size(); ++t) {
      const std::vector<float>& row = rows[t % rows.size()];
      EXPECT_EQ(host_draw(row, uniforms[t]), sampler.draw(row)) << "the replica, draw " << t;
      EXPECT_EQ(got[t], host_draw(row, uniforms[t])) << "draw " << t << " (row " << t % rows.size() << ", u "
                                                     << uniforms[t] << ")";
    }
  }
  // Uniforms on exact boundaries (every sum here is exact), at 0 and just below 1; an all-zero row draws 0.
  const double below_one = 1.0 - 1.0 / 9007199254740992.0;
  const std::vector<std::vector<float>> edge = {{0, 0.25f, 0, 0.25f, 0.5f, 0}, {0.5f, 0, 0, 0, 0, 0.5f},
                                                {0, 0, 0, 0, 0, 0},            {0, 0, 0.75f, 0, 0, 0.25f}};
  for (double u : {0.0, 0.25, 0.5, 0.75, 0.125, below_one}) {
    const std::vector<int> got = device_draws(edge, std::vector<double>(edge.size(), u));
    for (size_t r = 0; r < edge.size(); ++r) EXPECT_EQ(got[r], host_draw(edge[r], u)) << "edge row " << r << " u " << u;
  }
}

struct Accept {
  int n_accepted = -1, next = -1, used = -1;
  bool residual_empty = false;  // host only: a rejection whose residual was all zero (the draw fell back to p)
};

// Engine::verify's sampling loop (lib/engine/engine.cpp) on given distributions, with a Sampler seeded `seed`
// whose first `skip` uniforms went elsewhere (to the drafts' draws).
Accept host_verify(const std::vector<std::vector<float>>& p, const std::vector<std::vector<float>>& q,
                   const std::vector<int32_t>& drafts, uint64_t seed, int skip = 0) {
  imp::SamplingParams sp;
  sp.temperature = 1.0f, sp.seed = seed;
  imp::Sampler sampler(sp);
  for (int i = 0; i < skip; ++i) sampler.uniform();
  const int n = int(drafts.size()), V = int(p[0].size());
  Accept a;
  int j = 0, used = 0;
  int32_t next = -1;
  for (; j < n; ++j) {
    const int32_t d = drafts[j];
    const double u = sampler.uniform();
    ++used;
    if (!(p[j][d] > 0 && u * q[j][d] < p[j][d])) {
      std::vector<float> residual(V);
      double sum = 0;
      for (int v = 0; v < V; ++v) sum += (residual[v] = std::max(0.0f, p[j][v] - q[j][v]));
      next = sampler.draw(sum > 0 ? residual : p[j]);
      ++used;
      a.residual_empty = !(sum > 0);
      break;
    }
  }
  if (next < 0) next = sampler.draw(p[n]), ++used;
  a.n_accepted = j, a.next = next, a.used = used;
  return a;
}

Accept device_verify(const std::vector<std::vector<float>>& p, const std::vector<std::vector<float>>& q,
                     const std::vector<int32_t>& drafts, uint64_t seed) {
  const int n = int(drafts.size()), V = int(p[0].size()), ldp = V + 2, ldq = V + 9;
  std::vector<float> ph(size_t(n + 1) * ldp, NAN), qh(size_t(std::max(n, 1)) * ldq, NAN);
  for (int j = 0; j <= n; ++j) std::copy(p[j].begin(), p[j].end(), ph.begin() + size_t(j) * ldp);
  for (int j = 0; j < n; ++j) std::copy(q[j].begin(), q[j].end(), qh.begin() + size_t(j) * ldq);
  imp::Rng stream(seed);
  std::vector<double> uniforms(n + 1);
  for (double& u : uniforms) u = stream.uniform();
  Dev<float> pd(ph), qd(qh);
  Dev<int32_t> dd(drafts.empty() ? std::vector<int32_t>{-1} : drafts), result(3);
  Dev<double> ud(uniforms);
  EXPECT_EQ(ks::SpeculativeAccept(pd.p, ldp, qd.p, ldq, dd.p, n, V, ud.p, result.p, nullptr), cudaSuccess)
      << imp::kernels::last_error_detail();
  const std::vector<int32_t> r = result.down();
  EXPECT_TRUE(result.guard_intact());
  return Accept{r[0], r[1], r[2]};
}

int argmax(const std::vector<float>& x) { return int(std::max_element(x.begin(), x.end()) - x.begin()); }

// A random verify step: target logits, draft logits near or far from them (or equal), distributions under one
// of the cases (q over a draft vocabulary, zero past it, as Engine::draft makes it), and drafts of every kind.
struct Step {
  std::vector<std::vector<float>> p, q;
  std::vector<int32_t> drafts;
};

Step random_step(int n_vocab, int n, std::mt19937& rng) {
  static const int kStepCases[] = {0, 1, 2, 3, 4, 7};
  const Case& c = kCases[kStepCases[rng() % 6]];
  const float spread = std::array<float, 3>{0.0f, 0.3f, 2.0f}[rng() % 3];
  const int draft_vocab = rng() % 4 == 0 ? n_vocab - n_vocab / 10 : n_vocab;
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  Step s;
  for (int j = 0; j <= n; ++j) {
    std::vector<float> target(n_vocab);
    for (float& x : target) x = 3.0f * nd(rng);
    s.p.push_back(host_distribution(c, target.data(), n_vocab));
    if (j == n) break;
    std::vector<float> draft = target;
    for (float& x : draft) x += spread * nd(rng);
    std::vector<float> q = host_distribution(c, draft.data(), spread == 0.0f ? n_vocab : draft_vocab);
    q.resize(n_vocab, 0.0f);
    if (spread == 0.0f) q = s.p.back();  // q = p: a rejection leaves a zero residual
    int32_t d;
    switch (rng() % 4) {
      case 0: d = host_draw(q, ud(rng)); break;
      case 1: d = argmax(q); break;
      case 2: d = int32_t(rng() % n_vocab); break;
      default: {  // an id the target rules out, where there is one
        d = int32_t(rng() % n_vocab);
        for (int k = 0; k < n_vocab && s.p[j][d] > 0; ++k) d = (d + 1) % n_vocab;
      }
    }
    s.q.push_back(std::move(q));
    s.drafts.push_back(d);
  }
  return s;
}

TEST(CudaSamplingKernels, SpeculativeAcceptIsEngineVerify) {
  REQUIRE_GPU();
  std::mt19937 rng(2024);
  int accepted_all = 0, residual_draws = 0, residual_empty = 0;
  for (int t = 0; t < 406; ++t) {
    const int n_vocab = t < 400 ? 1000 : kBigVocab, n = t < 400 ? int(rng() % 17) : int(rng() % 5) + 1;
    const Step s = random_step(n_vocab, n, rng);
    const uint64_t seed = 77 + t;
    const Accept want = host_verify(s.p, s.q, s.drafts, seed), got = device_verify(s.p, s.q, s.drafts, seed);
    EXPECT_EQ(got.n_accepted, want.n_accepted) << "step " << t << " (" << n << " drafts)";
    EXPECT_EQ(got.next, want.next) << "step " << t;
    EXPECT_EQ(got.used, want.used) << "step " << t;
    accepted_all += want.n_accepted == n;
    residual_draws += want.n_accepted < n;
    residual_empty += want.residual_empty;
  }
  // Every way out of the loop was taken, many times.
  EXPECT_GT(accepted_all, 20);
  EXPECT_GT(residual_draws, 100);
  EXPECT_GT(residual_empty, 10);
}

// The engine's sequence on the device as one CUDA graph: target and draft distributions, the drafts drawn from q,
// then SpeculativeAccept; replayed with new uniforms (written into the same device buffers) and checked each time.
TEST(CudaSamplingKernels, VerifyStepInOneGraph) {
  REQUIRE_GPU();
  const int n = 16, V = kBigVocab;
  const Case& c = kCases[4];
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> target(size_t(n + 1) * V), draft(size_t(n) * V);
  for (float& x : target) x = 3.0f * nd(rng);
  for (size_t i = 0; i < draft.size(); ++i) draft[i] = target[i] + 0.3f * nd(rng);
  const size_t work_bytes = ks::DistributionWorkBytes(n + 1, V);
  ASSERT_GT(work_bytes, 0u);
  Dev<float> td(target), dd(draft), p(size_t(n + 1) * V), q(size_t(n) * V);
  Dev<unsigned char> work(work_bytes);
  Dev<double> draft_u(n), verify_u(n + 1);
  Dev<int32_t> drafts(n), result(3);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  CUDA_OK(ks::Distribution(td.p, n + 1, V, V, device_params(c), work.p, work_bytes, p.p, V, stream));
  CUDA_OK(ks::Distribution(dd.p, n, V, V, device_params(c), work.p, work_bytes, q.p, V, stream));
  CUDA_OK(ks::Draw(q.p, n, V, V, draft_u.p, drafts.p, stream));
  CUDA_OK(ks::SpeculativeAccept(p.p, V, q.p, V, drafts.p, n, V, verify_u.p, result.p, stream));
  cudaGraph_t graph;
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  std::vector<std::vector<float>> hp(n + 1), hq(n);
  for (int j = 0; j <= n; ++j) hp[j] = host_distribution(c, &target[size_t(j) * V], V);
  for (int j = 0; j < n; ++j) hq[j] = host_distribution(c, &draft[size_t(j) * V], V);
  for (int replay = 0; replay < 3; ++replay) {
    SCOPED_TRACE(::testing::Message() << "replay " << replay);
    const uint64_t seed = 500 + replay;
    imp::Rng stream_u(seed);
    std::vector<double> du(n), vu(n + 1);
    for (double& u : du) u = stream_u.uniform();
    for (double& u : vu) u = stream_u.uniform();
    draft_u.up(du), verify_u.up(vu);
    result.poison();
    drafts.poison();
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    const std::vector<float> gp = p.down(), gq = q.down();
    for (int j = 0; j <= n; ++j)
      ASSERT_TRUE(same_distribution(std::vector<float>(gp.begin() + size_t(j) * V, gp.begin() + size_t(j + 1) * V),
                                    hp[j], V)) << "p row " << j;
    for (int j = 0; j < n; ++j)
      ASSERT_TRUE(same_distribution(std::vector<float>(gq.begin() + size_t(j) * V, gq.begin() + size_t(j + 1) * V),
                                    hq[j], V)) << "q row " << j;
    std::vector<int32_t> want_drafts(n);
    for (int j = 0; j < n; ++j) want_drafts[j] = host_draw(hq[j], du[j]);
    EXPECT_EQ(drafts.down(), want_drafts);
    // The host verifies the same drafts on the Rng stream that continues after the drafts' draws.
    const Accept want = host_verify(hp, hq, want_drafts, seed, n);
    EXPECT_EQ(result.down(), (std::vector<int32_t>{want.n_accepted, want.next, want.used}));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(CudaSamplingKernels, RefusesBadArgumentsAndWritesNothing) {
  REQUIRE_GPU();
  const int V = 1000, rows = 2;
  const size_t need = ks::DistributionWorkBytes(rows, V);
  ASSERT_GT(need, 0u);
  EXPECT_EQ(ks::DistributionWorkBytes(rows, 0), 0u);
  EXPECT_EQ(ks::DistributionWorkBytes(-1, V), 0u);
  // A buffer sized for the most rows serves fewer.
  for (int v : {V, kBigVocab})
    for (int r = 1; r <= 17; ++r) EXPECT_LE(ks::DistributionWorkBytes(r, v), ks::DistributionWorkBytes(17, v)) << r;

  std::mt19937 rng(1);
  Dev<float> logits(imp::test::randn(size_t(rows) * V, rng)), probs(size_t(rows) * V), q(size_t(rows) * V);
  Dev<unsigned char> work(need);
  Dev<double> u(std::vector<double>{0.5, 0.5, 0.5});
  Dev<int32_t> drafts(std::vector<int32_t>{1, 2}), out(3);
  const ks::Params ok{1.0f, 20, 0.9f, 0.0f};
  const auto refused = [](cudaError_t e, const char* what) {
    EXPECT_EQ(e, cudaErrorInvalidValue) << what;
    EXPECT_STRNE(imp::kernels::last_error_detail(), "") << what;
    imp::kernels::clear_error_detail();
  };
  refused(ks::Distribution(logits.p, rows, 0, V, ok, work.p, need, probs.p, V, nullptr), "n_vocab 0");
  refused(ks::Distribution(logits.p, rows, -5, V, ok, work.p, need, probs.p, V, nullptr), "n_vocab -5");
  refused(ks::Distribution(logits.p, -1, V, V, ok, work.p, need, probs.p, V, nullptr), "n_rows -1");
  refused(ks::Distribution(logits.p, rows, V, V - 1, ok, work.p, need, probs.p, V, nullptr), "ld_logits");
  refused(ks::Distribution(logits.p, rows, V, V, ok, work.p, need, probs.p, V - 1, nullptr), "ld_probs");
  refused(ks::Distribution(logits.p, rows, V, V, ok, work.p, need - 1, probs.p, V, nullptr), "work too small");
  refused(ks::Distribution(logits.p, rows, V, V, ok, nullptr, need, probs.p, V, nullptr), "no work");
  for (float t : {0.0f, -1.0f, NAN, INFINITY}) {
    const ks::Params bad{t, 0, 1.0f, 0.0f};
    refused(ks::Distribution(logits.p, rows, V, V, bad, work.p, need, probs.p, V, nullptr), "temperature");
  }
  refused(ks::Draw(probs.p, rows, 0, V, u.p, out.p, nullptr), "Draw n_vocab 0");
  refused(ks::Draw(probs.p, -1, V, V, u.p, out.p, nullptr), "Draw n_rows -1");
  refused(ks::Draw(probs.p, rows, V, V - 1, u.p, out.p, nullptr), "Draw ld");
  refused(ks::SpeculativeAccept(probs.p, V, q.p, V, drafts.p, 2, 0, u.p, out.p, nullptr), "Accept n_vocab 0");
  refused(ks::SpeculativeAccept(probs.p, V, q.p, V, drafts.p, -1, V, u.p, out.p, nullptr), "Accept n_drafts -1");
  refused(ks::SpeculativeAccept(probs.p, V - 1, q.p, V, drafts.p, 1, V, u.p, out.p, nullptr), "Accept ldp");
  refused(ks::SpeculativeAccept(probs.p, V, q.p, V - 1, drafts.p, 1, V, u.p, out.p, nullptr), "Accept ldq");
  // Zero rows is nothing to do.
  EXPECT_EQ(ks::Distribution(logits.p, 0, V, V, ok, work.p, need, probs.p, V, nullptr), cudaSuccess);
  EXPECT_EQ(ks::Draw(probs.p, 0, V, V, u.p, out.p, nullptr), cudaSuccess);

  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> p = probs.down();
  EXPECT_TRUE(all_ff(p.data(), p.size() * sizeof(float))) << "a refused call wrote probs";
  EXPECT_EQ(out.down(), (std::vector<int32_t>{-1, -1, -1})) << "a refused call wrote its output";
}

}  // namespace

#endif  // IMP_HAVE_CUDA_KERNELS
