#include "model/config.h"

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"

#include <cmath>

namespace imp {

namespace {

// Field readers over the text-model object; `source` names the file in messages.
struct Fields {
  JsonValue obj;
  JsonValue top;  // the top-level object (tie_word_embeddings may sit there in multimodal repos)
  std::string source;

  std::optional<JsonValue> get(const char* key) const {
    auto v = obj.find(key);
    if (v && !v->is_null()) return v;
    return std::nullopt;
  }
  int64_t integer(const char* key) const {
    auto v = get(key);
    if (!v) fail(IMP_ERR_BAD_CONFIG, source, ": missing field \"", key, "\"");
    if (!v->is_number()) fail(IMP_ERR_BAD_CONFIG, source, ": field \"", key, "\" is not a number");
    double d = v->as_number(key);
    if (d != std::floor(d) || d < 0 || d > 1e9) fail(IMP_ERR_BAD_CONFIG, source, ": field \"", key, "\" is not a valid count (", d, ")");
    return int64_t(d);
  }
  int positive(const char* key) const {
    int64_t v = integer(key);
    if (v <= 0) fail(IMP_ERR_BAD_CONFIG, source, ": field \"", key, "\" must be > 0");
    return int(v);
  }
  int integer_or(const char* key, int dflt) const { return get(key) ? int(integer(key)) : dflt; }
  double number_or(const char* key, double dflt, std::optional<JsonValue> in = std::nullopt) const {
    auto v = in ? in->find(key) : get(key);
    if (!v || v->is_null()) return dflt;
    if (!v->is_number()) fail(IMP_ERR_BAD_CONFIG, source, ": field \"", key, "\" is not a number");
    return v->as_number(key);
  }
  bool boolean_or(const char* key, bool dflt) const {
    auto v = get(key);
    if (!v) return dflt;
    if (!v->is_bool()) fail(IMP_ERR_BAD_CONFIG, source, ": field \"", key, "\" is not a boolean");
    return v->as_bool(key);
  }
};

// eos_token_id: an id or a list of ids (the first is used); -1 when absent.
int eos_of(const JsonValue& obj) {
  auto v = obj.find("eos_token_id");
  if (!v) return -1;
  if (v->is_number()) return int(v->as_int("eos_token_id"));
  if (v->is_array() && v->size() > 0 && v->elements()[0].is_number()) return int(v->elements()[0].as_int("eos_token_id"));
  return -1;
}

}  // namespace

int ModelConfig::n_layer_of(LayerKind kind) const {
  int n = 0;
  for (LayerKind k : layer_kinds) n += (k == kind);
  return n;
}

const char* family_name(ModelFamily family) {
  switch (family) {
    case ModelFamily::Qwen35: return "qwen3_5";
    case ModelFamily::Qwen35Moe: return "qwen3_5_moe";
    case ModelFamily::Qwen3Next: return "qwen3_next";
  }
  return "?";
}

ModelConfig parse_config(const std::string& json_text, const std::string& source) {
  JsonDocument doc = JsonDocument::parse(json_text, source);
  JsonValue root = doc.root();
  if (!root.is_object()) fail(IMP_ERR_BAD_CONFIG, source, ": top level is not an object");

  auto type_of = [&](JsonValue v) -> std::string {
    auto t = v.find("model_type");
    return (t && t->is_string()) ? t->as_string("model_type") : std::string();
  };
  // Qwen3.5/3.6 multimodal repos: the top-level model_type is e.g. "qwen3_5" or "qwen3_5_moe" and the text
  // model sits in text_config (model_type "qwen3_5_text" / "qwen3_5_moe_text").
  JsonValue text = root;
  std::string type = type_of(root);
  if (auto tc = root.find("text_config"); tc && tc->is_object()) {
    text = *tc;
    std::string inner = type_of(*tc);
    if (!inner.empty()) type = inner;
  }
  if (type.empty()) fail(IMP_ERR_BAD_CONFIG, source, ": no \"model_type\"");
  auto strip = [](std::string s, const char* suffix) {
    size_t n = std::char_traits<char>::length(suffix);
    if (s.size() > n && s.compare(s.size() - n, n, suffix) == 0) s.resize(s.size() - n);
    return s;
  };
  std::string base = strip(type, "_text");

  ModelConfig c;
  if (base == "qwen3_5") c.family = ModelFamily::Qwen35;
  else if (base == "qwen3_5_moe") c.family = ModelFamily::Qwen35Moe;
  else if (base == "qwen3_next") c.family = ModelFamily::Qwen3Next;
  else fail(IMP_ERR_UNKNOWN_ARCH, source, ": model_type \"", type, "\" is not supported (libimp runs qwen3_5, qwen3_5_moe, qwen3_next)");
  c.model_type = base;

  Fields f{text, root, source};
  c.n_vocab = f.positive("vocab_size");
  c.n_embd = f.positive("hidden_size");
  c.n_layer = f.positive("num_hidden_layers");
  c.rms_norm_eps = float(f.number_or("rms_norm_eps", 1e-6));
  c.n_ctx_train = f.integer_or("max_position_embeddings", 0);
  // tie_word_embeddings: in multimodal repos it may sit at the top level only.
  {
    auto v = text.find("tie_word_embeddings");
    if (!v || v->is_null()) v = root.find("tie_word_embeddings");
    if (v && !v->is_null()) {
      if (!v->is_bool()) fail(IMP_ERR_BAD_CONFIG, source, ": field \"tie_word_embeddings\" is not a boolean");
      c.tie_word_embeddings = v->as_bool();
    }
  }

  c.n_head = f.positive("num_attention_heads");
  c.n_head_kv = f.positive("num_key_value_heads");
  c.head_dim = f.get("head_dim") ? f.positive("head_dim") : c.n_embd / c.n_head;
  c.attn_output_gate = f.boolean_or("attn_output_gate", true);
  if (!c.attn_output_gate) fail(IMP_ERR_BAD_CONFIG, source, ": attn_output_gate=false is not supported");
  // RoPE: Qwen3.5 keeps theta and the partial factor in rope_parameters; Qwen3-Next at the top level.
  double partial = 0.25, theta = 1e7;
  {
    auto rp = text.find("rope_parameters");
    if (!rp || !rp->is_object()) rp = text.find("rope_scaling");
    partial = f.number_or("partial_rotary_factor", partial);
    theta = f.number_or("rope_theta", theta);
    if (rp && rp->is_object()) {
      partial = f.number_or("partial_rotary_factor", partial, rp);
      theta = f.number_or("rope_theta", theta, rp);
      if (auto rt = rp->find("rope_type"); rt && rt->is_string()) {
        std::string t = rt->as_string();
        if (t != "default") fail(IMP_ERR_BAD_CONFIG, source, ": rope_type \"", t, "\" is not supported");
      }
    }
  }
  if (!(partial > 0 && partial <= 1)) fail(IMP_ERR_BAD_CONFIG, source, ": partial_rotary_factor must be in (0, 1]");
  c.n_rot = int(std::lround(partial * c.head_dim));
  if (c.n_rot % 2 != 0 || c.n_rot <= 0) fail(IMP_ERR_BAD_CONFIG, source, ": rotary dims ", c.n_rot, " must be even and > 0");
  c.rope_theta = float(theta);

  c.lin_n_k_heads = f.positive("linear_num_key_heads");
  c.lin_n_v_heads = f.positive("linear_num_value_heads");
  c.lin_k_dim = f.positive("linear_key_head_dim");
  c.lin_v_dim = f.positive("linear_value_head_dim");
  c.lin_conv_kernel = f.get("linear_conv_kernel_dim") ? f.positive("linear_conv_kernel_dim") : 4;
  if (c.lin_n_v_heads % c.lin_n_k_heads != 0)
    fail(IMP_ERR_BAD_CONFIG, source, ": linear_num_value_heads (", c.lin_n_v_heads, ") is not a multiple of linear_num_key_heads (", c.lin_n_k_heads, ")");
  if (c.n_head % c.n_head_kv != 0)
    fail(IMP_ERR_BAD_CONFIG, source, ": num_attention_heads (", c.n_head, ") is not a multiple of num_key_value_heads (", c.n_head_kv, ")");

  // Layer kinds: an explicit list, or every interval-th layer is full attention.
  if (auto lt = f.get("layer_types")) {
    if (!lt->is_array()) fail(IMP_ERR_BAD_CONFIG, source, ": layer_types is not a list");
    for (JsonValue v : lt->elements()) {
      std::string s = v.is_string() ? v.as_string() : std::string();
      if (s == "linear_attention") c.layer_kinds.push_back(LayerKind::LinearAttention);
      else if (s == "full_attention") c.layer_kinds.push_back(LayerKind::FullAttention);
      else fail(IMP_ERR_BAD_CONFIG, source, ": unknown layer type \"", s, "\" in layer_types");
    }
    if (int(c.layer_kinds.size()) != c.n_layer)
      fail(IMP_ERR_BAD_CONFIG, source, ": layer_types has ", c.layer_kinds.size(), " entries, num_hidden_layers is ", c.n_layer);
  } else {
    int interval = f.get("full_attention_interval") ? f.positive("full_attention_interval") : 4;
    for (int i = 0; i < c.n_layer; ++i)
      c.layer_kinds.push_back((i + 1) % interval == 0 ? LayerKind::FullAttention : LayerKind::LinearAttention);
  }

  c.is_moe = c.family != ModelFamily::Qwen35 && f.get("num_experts") && f.integer("num_experts") > 0;
  if (c.family == ModelFamily::Qwen35Moe && !c.is_moe) fail(IMP_ERR_BAD_CONFIG, source, ": qwen3_5_moe without num_experts");
  if (c.is_moe) {
    c.n_expert = f.positive("num_experts");
    c.n_expert_used = f.positive("num_experts_per_tok");
    c.n_ff_expert = f.positive("moe_intermediate_size");
    c.n_ff_shared = f.integer_or("shared_expert_intermediate_size", 0);
    c.norm_topk_prob = f.boolean_or("norm_topk_prob", true);
    if (c.n_expert_used > c.n_expert) fail(IMP_ERR_BAD_CONFIG, source, ": num_experts_per_tok exceeds num_experts");
    // Qwen3-Next can interleave dense layers (decoder_sparse_step / mlp_only_layers); the released models do not.
    if (f.integer_or("decoder_sparse_step", 1) != 1) fail(IMP_ERR_BAD_CONFIG, source, ": decoder_sparse_step != 1 is not supported");
    if (auto m = f.get("mlp_only_layers"); m && m->size() > 0) fail(IMP_ERR_BAD_CONFIG, source, ": mlp_only_layers is not supported");
  } else {
    c.n_ff = f.positive("intermediate_size");
  }

  c.eos_token_id = eos_of(text);
  if (c.eos_token_id < 0) c.eos_token_id = eos_of(root);
  c.n_mtp_layer = f.integer_or("mtp_num_hidden_layers", f.integer_or("num_nextn_predict_layers", 0));
  if (c.n_mtp_layer > 1) fail(IMP_ERR_BAD_CONFIG, source, ": ", c.n_mtp_layer, " MTP layers; libimp runs one");
  return c;
}

ModelConfig load_config(const std::string& dir) {
  std::string path = join_path(dir, "config.json");
  if (!path_exists(path)) fail(IMP_ERR_MISSING_CONFIG, "no config.json in ", dir);
  ModelConfig c = parse_config(read_file(path), path);
  std::string gen = join_path(dir, "generation_config.json");
  if (c.eos_token_id < 0 && path_exists(gen)) {
    JsonDocument doc = JsonDocument::parse(read_file(gen), gen);
    if (doc.root().is_object()) c.eos_token_id = eos_of(doc.root());
  }
  if (c.eos_token_id >= c.n_vocab) c.eos_token_id = -1;
  return c;
}

}  // namespace imp
