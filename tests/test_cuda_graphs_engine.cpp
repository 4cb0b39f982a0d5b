// CUDA graphs seen from above the forward pass: the IMP_CUDA_GRAPHS switch, and generation through the C ABI (the
// engine's draft, verify and rollback on top of the graphed batches) emitting the same tokens with graphs as
// without, greedy (plain and MTP, k up to 16) and sampled on the device (plain and MTP, with and without top-k /
// top-p), the sampled batches recorded as graphs. The batches themselves against the eager path, bit for bit:
// test_cuda_graphs.cpp. Without a CUDA device every test skips with "no CUDA device: GPU tests skipped".
#include <imp/imp.h>

#include "api/handles.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "model/model.h"
#include "support/cuda_test.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#if !defined(IMP_HAVE_CUDA_KERNELS)

TEST(CudaGraphsEngine, NeedTheCudaBackend) { GTEST_SKIP() << "no CUDA device: GPU tests skipped"; }

#else

#include "cuda/cuda_forward.h"

namespace {

using imp::cuda::CudaForward;
std::string model_dir(const std::string& name) { return imp::test::cuda_test_model_dir(name); }

// Sets or clears an environment variable for the scope, restoring the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) had_ = true, old_ = old;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(CudaGraphs, EnvironmentSwitch) {
  REQUIRE_GPU();
  auto model = imp::load_model(model_dir("tiny_f32"));
  {
    ScopedEnv off("IMP_CUDA_GRAPHS", "0");
    auto f = imp::make_cuda_forward(*model, 64, 0);
    EXPECT_FALSE(dynamic_cast<CudaForward&>(*f).graphs().enabled());
  }
  {
    ScopedEnv unset("IMP_CUDA_GRAPHS", nullptr);
    auto f = imp::make_cuda_forward(*model, 64, 0);
    EXPECT_TRUE(dynamic_cast<CudaForward&>(*f).graphs().enabled());
    // Read at construction only: turning graphs off afterwards changes nothing for this instance.
    ScopedEnv off("IMP_CUDA_GRAPHS", "0");
    EXPECT_TRUE(dynamic_cast<CudaForward&>(*f).graphs().enabled());
  }
}

// A model on the CUDA backend through the C ABI, with two contexts: one that records CUDA graphs, one without.
struct GraphedAndEager {
  explicit GraphedAndEager(const char* name) {
    imp_model_params mp = imp_model_default_params();
    mp.backend = IMP_BACKEND_CUDA;
    if (imp_model_load(&model, model_dir(name).c_str(), &mp) != IMP_OK) {
      ADD_FAILURE() << "loading " << name << ": " << imp_last_error();
      return;
    }
    imp_context_params cp = imp_context_default_params();
    cp.n_ctx = 256;
    {
      ScopedEnv unset("IMP_CUDA_GRAPHS", nullptr);
      EXPECT_EQ(imp_context_create(&with, model, &cp), IMP_OK) << imp_last_error();
    }
    {
      ScopedEnv off("IMP_CUDA_GRAPHS", "0");
      EXPECT_EQ(imp_context_create(&without, model, &cp), IMP_OK) << imp_last_error();
    }
  }
  ~GraphedAndEager() {
    imp_context_free(with);
    imp_context_free(without);
    imp_model_free(model);
  }
  bool ok() const { return model && with && without; }
  imp_model* model = nullptr;
  imp_context* with = nullptr;     // graphs on
  imp_context* without = nullptr;  // IMP_CUDA_GRAPHS=0
};

std::vector<imp_token> small_prompt(unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<imp_token> prompt(20);
  for (auto& x : prompt) x = imp_token(rng() % 64);
  return prompt;
}

// Greedy generation through the C ABI, plain and with MTP drafts (draft, verify, rollback in the engine), emits
// the same tokens with and without graphs.
TEST(CudaGraphs, GreedyGenerationSameWithAndWithoutGraphs) {
  REQUIRE_GPU();
  for (const char* name : {"tiny_bf16", "qwen35_moe"}) {
    SCOPED_TRACE(name);
    GraphedAndEager g(name);
    ASSERT_TRUE(g.ok());
    const std::vector<imp_token> prompt = small_prompt(5);
    auto generate = [&](imp_context* ctx, int k) { return imp::test::generate_ids(ctx, prompt, 48, k); };
    for (int k : {0, 1, 3, 8, 16}) EXPECT_EQ(generate(g.with, k), generate(g.without, k)) << "n_draft " << k;
  }
}

// Sampled generation (temperature > 0: device sampling, plain and with MTP drafts) emits the same tokens with and
// without graphs: the graphs replay the eager path's sampling kernels on the same draws. And it does replay
// graphs: a sampled batch is not left to run eagerly.
TEST(CudaGraphs, SampledGenerationSameWithAndWithoutGraphs) {
  REQUIRE_GPU();
  for (const char* name : {"tiny_bf16", "qwen35_moe"}) {
    SCOPED_TRACE(name);
    GraphedAndEager g(name);
    ASSERT_TRUE(g.ok());
    auto& graphs = dynamic_cast<CudaForward&>(g.with->engine->forward()).graphs();
    const std::vector<imp_token> prompt = small_prompt(9);
    imp_sampling_params plain_t = imp_sampling_default_params(), filtered = imp_sampling_default_params();
    plain_t.temperature = 1.0f;
    plain_t.seed = 11;
    filtered.temperature = 0.7f;
    filtered.top_k = 20;
    filtered.top_p = 0.9f;
    filtered.seed = 12;
    for (const imp_sampling_params& sp : {plain_t, filtered}) {
      ASSERT_EQ(imp_context_set_sampling(g.with, &sp), IMP_OK) << imp_last_error();
      ASSERT_EQ(imp_context_set_sampling(g.without, &sp), IMP_OK) << imp_last_error();
      const size_t before = graphs.recorded();
      for (int k : {0, 1, 3})
        EXPECT_EQ(imp::test::generate_ids(g.with, prompt, 40, k), imp::test::generate_ids(g.without, prompt, 40, k))
            << "temperature " << sp.temperature << ", n_draft " << k;
      EXPECT_GT(graphs.recorded(), before) << "no sampled batch was recorded as a graph";
    }
    EXPECT_EQ(graphs.capture_failures(), 0);
  }
}

}  // namespace

#endif  // IMP_HAVE_CUDA_KERNELS
