// ModelConfig: the hyper-parameters of a Qwen3.5 / Qwen3.6 / Qwen3-Next hybrid, read from a Hugging Face
// config.json. Two layouts: Qwen3.5/3.6 nest the text model under "text_config" (model_type qwen3_5 /
// qwen3_5_moe, rope fields inside "rope_parameters", explicit "layer_types"); Qwen3-Next keeps everything at the
// top level (model_type qwen3_next, "full_attention_interval").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace imp {

enum class ModelFamily { Qwen35, Qwen35Moe, Qwen3Next };
enum class LayerKind { LinearAttention, FullAttention };

struct ModelConfig {
  ModelFamily family = ModelFamily::Qwen35;
  std::string model_type;  // as in config.json: "qwen3_5", "qwen3_5_moe", "qwen3_next"

  int n_vocab = 0;        // vocab_size
  int n_embd = 0;         // hidden_size H
  int n_layer = 0;        // num_hidden_layers L (main model, MTP not counted)
  std::vector<LayerKind> layer_kinds;  // (L)
  float rms_norm_eps = 1e-6f;
  bool tie_word_embeddings = false;
  int n_ctx_train = 0;    // max_position_embeddings
  int eos_token_id = -1;  // config.json (first of a list), else generation_config.json, else -1

  // Gated full attention.
  int n_head = 0;         // num_attention_heads nh
  int n_head_kv = 0;      // num_key_value_heads nkv
  int head_dim = 0;       // hd
  int n_rot = 0;          // rotated dims per head = partial_rotary_factor * hd (NeoX pairing)
  float rope_theta = 1e7f;
  bool attn_output_gate = true;

  // Gated DeltaNet.
  int lin_n_k_heads = 0;  // linear_num_key_heads HK
  int lin_n_v_heads = 0;  // linear_num_value_heads HV (a multiple of HK)
  int lin_k_dim = 0;      // linear_key_head_dim dk
  int lin_v_dim = 0;      // linear_value_head_dim dv
  int lin_conv_kernel = 4;
  int lin_conv_dim() const { return 2 * lin_n_k_heads * lin_k_dim + lin_n_v_heads * lin_v_dim; }

  // FFN: dense SwiGLU, or MoE with softmax top-k routing and a sigmoid-gated shared expert.
  bool is_moe = false;
  int n_ff = 0;             // intermediate_size (dense)
  int n_expert = 0;         // num_experts E
  int n_expert_used = 0;    // num_experts_per_tok
  int n_ff_expert = 0;      // moe_intermediate_size
  int n_ff_shared = 0;      // shared_expert_intermediate_size (0 = no shared expert)
  bool norm_topk_prob = true;

  // MTP (NextN) head.
  int n_mtp_layer = 0;            // mtp_num_hidden_layers / num_nextn_predict_layers
  bool mtp_uses_post_norm_hidden = true;  // Qwen families feed the post-final-norm hidden (spec section 3)

  int n_layer_of(LayerKind kind) const;
};

// Parses <dir>/config.json. Throws imp::Error: IMP_ERR_MISSING_CONFIG, IMP_ERR_BAD_JSON, IMP_ERR_UNKNOWN_ARCH,
// IMP_ERR_BAD_CONFIG (missing, mistyped or inconsistent fields).
ModelConfig load_config(const std::string& dir);
ModelConfig parse_config(const std::string& json_text, const std::string& source);

const char* family_name(ModelFamily family);

}  // namespace imp
