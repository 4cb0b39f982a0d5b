// What the CUDA test files share: whether a GPU is there (REQUIRE_GPU skips a test without one, and says so, so
// CI without a GPU passes and tools/gpu-check.sh can tell a skip from a pass), random inputs, and in builds with
// the kernels CUDA_OK and Dev<T>, a device copy of a host vector that is poisoned (0xFF bytes: NaN for floats) with
// guard elements past its end, so that unwritten and overwritten memory both show; and greedy generation through
// the C ABI for the parity tests.
#pragma once

#include <imp/imp.h>

#include <gtest/gtest.h>

#include "support/golden.h"
#include "support/tiny_model.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if defined(IMP_HAVE_CUDA_KERNELS)
#include "cuda/cuda_device.h"

#include "common.cuh"

#include <cuda_runtime_api.h>
#endif

namespace imp::test {

inline bool have_gpu() {
#if defined(IMP_HAVE_CUDA_KERNELS)
  return imp::cuda_device_available();
#else
  return false;
#endif
}

// The models the CUDA suites share: "tiny_f32", "tiny_bf16", "tiny_f16" and "tiny_moe" are random 4-layer models
// (the same options and seeds in every suite) written once per process on first use; any other name is a
// transformers fixture under tests/fixtures.
inline bool is_fixture(const std::string& name) { return name.rfind("qwen", 0) == 0; }

inline std::string cuda_test_model_dir(const std::string& name) {
  if (name.rfind("tiny_", 0) != 0) return fixtures_dir() + "/" + name;
  static std::map<std::string, std::unique_ptr<TempDir>> dirs;
  std::unique_ptr<TempDir>& dir = dirs[name];
  if (!dir) {
    TinyModelOptions o;
    o.layers = 4;
    if (name == "tiny_bf16") o.dtype = "BF16", o.seed = 2;
    else if (name == "tiny_f16") o.dtype = "F16", o.seed = 3;
    else if (name == "tiny_moe") o.dtype = "BF16", o.moe = true, o.seed = 4;
    else if (name != "tiny_f32") ADD_FAILURE() << "no tiny model called " << name;
    dir = std::make_unique<TempDir>();
    write_tiny_model(dir->path(), o);
  }
  return dir->path();
}

// Resets ctx (which restarts its random stream) and generates n_gen tokens from prompt with imp_generate and the
// context's sampler (greedy unless set otherwise), no EOS stop, n_draft drafts per verify (0 = plain decoding).
// The output starts poisoned with -7; *n_out, if given, gets the count emitted.
inline std::vector<imp_token> generate_ids(imp_context* ctx, const std::vector<imp_token>& prompt, int n_gen,
                                           int n_draft, size_t* n_out = nullptr) {
  EXPECT_EQ(imp_context_reset(ctx), IMP_OK);
  imp_generate_params gp = imp_generate_default_params();
  gp.max_tokens = n_gen;
  gp.n_draft = n_draft;
  gp.eos_token = -2;
  std::vector<imp_token> out(n_gen, -7);
  size_t n = 0;
  EXPECT_EQ(imp_generate(ctx, prompt.data(), int32_t(prompt.size()), &gp, nullptr, nullptr, out.data(), out.size(), &n,
                         nullptr),
            IMP_OK)
      << imp_last_error();
  if (n_out) *n_out = n;
  return out;
}

inline std::vector<float> randn(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

#if defined(IMP_HAVE_CUDA_KERNELS)
constexpr size_t kGuard = 64;  // poisoned elements allocated past every Dev's end

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p), (n + kGuard) * sizeof(T)), cudaSuccess);
    poison();
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { up(h); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void up(const std::vector<T>& h) {
    EXPECT_EQ(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  void poison(int byte = 0xFF) { EXPECT_EQ(cudaMemset(p, byte, (n + kGuard) * sizeof(T)), cudaSuccess); }
  std::vector<T> down(bool with_guard = false) const {
    std::vector<T> h(n + (with_guard ? kGuard : 0));
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p, h.size() * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  // The guard elements still hold the 0xFF poison.
  bool guard_intact() const {
    std::vector<T> h = down(true);
    std::vector<unsigned char> bytes(kGuard * sizeof(T));
    std::memcpy(bytes.data(), h.data() + n, bytes.size());
    return std::all_of(bytes.begin(), bytes.end(), [](unsigned char b) { return b == 0xFF; });
  }
};
#endif

}  // namespace imp::test

#define REQUIRE_GPU()                                                                        \
  do {                                                                                       \
    if (!::imp::test::have_gpu()) GTEST_SKIP() << "no CUDA device: GPU tests skipped";       \
  } while (0)

#if defined(IMP_HAVE_CUDA_KERNELS)
#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call << ": " << ::imp::kernels::last_error_detail()
#endif
