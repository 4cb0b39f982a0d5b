// The benchmark shapes in configs/ parse as libimp configs and have the sizes their names promise.
#include "core/file.h"
#include "model/config.h"

#include <gtest/gtest.h>

namespace {

// Parameters of the main model (embedding, layers, final norm, untied lm_head), MTP not counted.
double main_params(const imp::ModelConfig& c) {
  const double H = c.n_embd, V = c.n_vocab;
  double attn = H * c.n_head * 2 * c.head_dim + 2 * H * c.n_head_kv * c.head_dim + c.n_head * c.head_dim * H;
  double lin = H * (c.lin_conv_dim() + 2.0 * c.lin_n_v_heads * c.lin_v_dim + 2.0 * c.lin_n_v_heads) +
               c.lin_n_v_heads * c.lin_v_dim * H;
  double ffn = c.is_moe ? 3.0 * H * c.n_ff_expert * c.n_expert + 3.0 * H * c.n_ff_shared + H * c.n_expert + H
                        : 3.0 * H * c.n_ff;
  return 2 * V * H + c.n_layer_of(imp::LayerKind::FullAttention) * attn +
         c.n_layer_of(imp::LayerKind::LinearAttention) * lin + c.n_layer * ffn;
}

imp::ModelConfig load(const char* name) {
  std::string path = std::string(IMP_SOURCE_DIR) + "/configs/" + name;
  return imp::parse_config(imp::read_file(path), path);
}

TEST(Configs, Qwen35NineBLikeDense) {
  imp::ModelConfig c = load("qwen35-9b-like.json");
  EXPECT_EQ(c.family, imp::ModelFamily::Qwen35);
  EXPECT_EQ(c.n_layer_of(imp::LayerKind::FullAttention), 8);
  EXPECT_EQ(c.n_mtp_layer, 1);
  EXPECT_NEAR(main_params(c) / 1e9, 9.0, 0.8);  // "9B-like"
}

TEST(Configs, Qwen36ThirtyFiveBA3BMoe) {
  imp::ModelConfig c = load("qwen36-35b-a3b.json");
  EXPECT_EQ(c.family, imp::ModelFamily::Qwen35Moe);
  EXPECT_EQ(c.n_expert, 256);
  EXPECT_EQ(c.n_expert_used, 8);
  EXPECT_NEAR(main_params(c) / 1e9, 35.0, 2.5);  // "35B"
}

}  // namespace
