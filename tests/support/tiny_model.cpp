#include "support/tiny_model.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <ftw.h>
#include <unistd.h>

namespace imp::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/imp-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  nftw(path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return std::remove(p); }, 16,
       FTW_DEPTH | FTW_PHYS);
}

std::string tiny_config_json(const TinyModelOptions& o) {
  std::ostringstream s;
  s << "{\n  \"architectures\": [\"Qwen3_5ForCausalLM\"],\n"
    << "  \"model_type\": \"" << (o.moe ? "qwen3_5_moe_text" : "qwen3_5_text") << "\",\n"
    << "  \"vocab_size\": " << o.vocab << ", \"hidden_size\": " << o.hidden << ", \"num_hidden_layers\": " << o.layers << ",\n"
    << "  \"layer_types\": [";
  for (int i = 0; i < o.layers; ++i) s << (i ? ", " : "") << ((i + 1) % 2 == 0 ? "\"full_attention\"" : "\"linear_attention\"");
  s << "],\n  \"num_attention_heads\": " << o.n_head << ", \"num_key_value_heads\": " << o.n_kv << ", \"head_dim\": " << o.head_dim << ",\n"
    << "  \"linear_num_key_heads\": " << o.k_heads << ", \"linear_num_value_heads\": " << o.v_heads
    << ", \"linear_key_head_dim\": " << o.k_dim << ", \"linear_value_head_dim\": " << o.v_dim << ", \"linear_conv_kernel_dim\": 4,\n"
    << "  \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000000.0, \"partial_rotary_factor\": 0.25},\n"
    << "  \"rms_norm_eps\": 1e-06, \"tie_word_embeddings\": false, \"max_position_embeddings\": 4096,\n";
  if (o.moe)
    s << "  \"num_experts\": " << o.experts << ", \"num_experts_per_tok\": " << o.experts_used << ", \"moe_intermediate_size\": " << o.ff_expert
      << ", \"shared_expert_intermediate_size\": " << o.ff_shared << ", \"norm_topk_prob\": true,\n";
  else
    s << "  \"intermediate_size\": " << o.ff << ",\n";
  s << "  \"mtp_num_hidden_layers\": " << (o.mtp ? 1 : 0) << "\n}\n";
  return s.str();
}

namespace {

struct Gen {
  std::mt19937 rng;
  std::normal_distribution<float> normal{0.0f, 1.0f};
  TinyTensor t(const std::string& dtype, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
    TinyTensor x;
    x.dtype = dtype;
    x.shape = std::move(shape);
    size_t n = 1;
    for (auto d : x.shape) n *= size_t(d);
    x.values.resize(n);
    for (auto& v : x.values) v = offset + scale * normal(rng);
    return x;
  }
};

void add_attention(Gen& g, const TinyModelOptions& o, const std::string& p, std::map<std::string, TinyTensor>& m) {
  const std::string& dt = o.dtype;
  float s = 1.0f / std::sqrt(float(o.hidden));
  m[p + "self_attn.q_proj.weight"] = g.t(dt, {o.n_head * 2 * o.head_dim, o.hidden}, s);
  m[p + "self_attn.k_proj.weight"] = g.t(dt, {o.n_kv * o.head_dim, o.hidden}, s);
  m[p + "self_attn.v_proj.weight"] = g.t(dt, {o.n_kv * o.head_dim, o.hidden}, s);
  m[p + "self_attn.o_proj.weight"] = g.t(dt, {o.hidden, o.n_head * o.head_dim}, s);
  m[p + "self_attn.q_norm.weight"] = g.t(dt, {o.head_dim}, 0.2f);
  m[p + "self_attn.k_norm.weight"] = g.t(dt, {o.head_dim}, 0.2f);
}

void add_ffn(Gen& g, const TinyModelOptions& o, const std::string& p, std::map<std::string, TinyTensor>& m) {
  const std::string& dt = o.dtype;
  float s = 1.0f / std::sqrt(float(o.hidden));
  if (!o.moe) {
    m[p + "mlp.gate_proj.weight"] = g.t(dt, {o.ff, o.hidden}, s);
    m[p + "mlp.up_proj.weight"] = g.t(dt, {o.ff, o.hidden}, s);
    m[p + "mlp.down_proj.weight"] = g.t(dt, {o.hidden, o.ff}, s);
    return;
  }
  m[p + "mlp.gate.weight"] = g.t(dt, {o.experts, o.hidden}, 4 * s);
  m[p + "mlp.experts.gate_up_proj"] = g.t(dt, {o.experts, 2 * o.ff_expert, o.hidden}, s);
  m[p + "mlp.experts.down_proj"] = g.t(dt, {o.experts, o.hidden, o.ff_expert}, s);
  m[p + "mlp.shared_expert.gate_proj.weight"] = g.t(dt, {o.ff_shared, o.hidden}, s);
  m[p + "mlp.shared_expert.up_proj.weight"] = g.t(dt, {o.ff_shared, o.hidden}, s);
  m[p + "mlp.shared_expert.down_proj.weight"] = g.t(dt, {o.hidden, o.ff_shared}, s);
  m[p + "mlp.shared_expert_gate.weight"] = g.t(dt, {1, o.hidden}, s);
}

}  // namespace

std::map<std::string, TinyTensor> tiny_tensors(const TinyModelOptions& o) {
  Gen g{std::mt19937(o.seed)};
  std::map<std::string, TinyTensor> m;
  const std::string& dt = o.dtype;
  const float s = 1.0f / std::sqrt(float(o.hidden));
  const int conv_dim = 2 * o.k_heads * o.k_dim + o.v_heads * o.v_dim;
  m["model.embed_tokens.weight"] = g.t(dt, {o.vocab, o.hidden}, 1.0f);
  m["lm_head.weight"] = g.t(dt, {o.vocab, o.hidden}, s * 3);
  m["model.norm.weight"] = g.t(dt, {o.hidden}, 0.2f);
  for (int i = 0; i < o.layers; ++i) {
    std::string p = "model.layers." + std::to_string(i) + ".";
    m[p + "input_layernorm.weight"] = g.t(dt, {o.hidden}, 0.2f);
    m[p + "post_attention_layernorm.weight"] = g.t(dt, {o.hidden}, 0.2f);
    if ((i + 1) % 2 == 0) {
      add_attention(g, o, p, m);
    } else {
      std::string q = p + "linear_attn.";
      m[q + "in_proj_qkv.weight"] = g.t(dt, {conv_dim, o.hidden}, s);
      m[q + "in_proj_z.weight"] = g.t(dt, {o.v_heads * o.v_dim, o.hidden}, s);
      m[q + "in_proj_b.weight"] = g.t(dt, {o.v_heads, o.hidden}, s);
      m[q + "in_proj_a.weight"] = g.t(dt, {o.v_heads, o.hidden}, s);
      m[q + "conv1d.weight"] = g.t(dt, {conv_dim, 1, 4}, 0.5f);
      m[q + "A_log"] = g.t(dt, {o.v_heads}, 0.5f, 1.0f);
      m[q + "dt_bias"] = g.t(dt, {o.v_heads}, 0.5f);
      m[q + "norm.weight"] = g.t(dt, {o.v_dim}, 0.2f, 1.0f);
      m[q + "out_proj.weight"] = g.t(dt, {o.hidden, o.v_heads * o.v_dim}, s);
    }
    add_ffn(g, o, p, m);
  }
  if (o.mtp) {
    m["mtp.fc.weight"] = g.t(dt, {o.hidden, 2 * o.hidden}, s);
    m["mtp.pre_fc_norm_embedding.weight"] = g.t(dt, {o.hidden}, 0.2f);
    m["mtp.pre_fc_norm_hidden.weight"] = g.t(dt, {o.hidden}, 0.2f);
    m["mtp.norm.weight"] = g.t(dt, {o.hidden}, 0.2f);
    m["mtp.layers.0.input_layernorm.weight"] = g.t(dt, {o.hidden}, 0.2f);
    m["mtp.layers.0.post_attention_layernorm.weight"] = g.t(dt, {o.hidden}, 0.2f);
    add_attention(g, o, "mtp.layers.0.", m);
    add_ffn(g, o, "mtp.layers.0.", m);
  }
  return m;
}

namespace {

uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return uint16_t((b + 0x7FFF + ((b >> 16) & 1)) >> 16);  // round to nearest even
}

uint16_t to_f16(float f) {
  // Round-to-nearest via the F16C-free path: good enough for test weights in the normal range.
  uint32_t b;
  std::memcpy(&b, &f, 4);
  uint32_t sign = (b >> 16) & 0x8000;
  int exp = int((b >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = b & 0x7FFFFF;
  if (exp <= 0) return uint16_t(sign);
  if (exp >= 31) return uint16_t(sign | 0x7C00);
  uint32_t h = sign | (uint32_t(exp) << 10) | (mant >> 13);
  if ((mant & 0x1FFF) > 0x1000 || ((mant & 0x1FFF) == 0x1000 && (h & 1))) ++h;
  return uint16_t(h);
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, TinyTensor>& tensors) {
  std::ostringstream header;
  std::string data;
  header << "{\"__metadata__\":{\"format\":\"pt\"}";
  for (const auto& [name, t] : tensors) {
    std::string bytes;
    if (t.dtype == "F32") {
      bytes.resize(t.values.size() * 4);
      std::memcpy(bytes.data(), t.values.data(), bytes.size());
    } else if (t.dtype == "BF16" || t.dtype == "F16") {
      bytes.resize(t.values.size() * 2);
      for (size_t i = 0; i < t.values.size(); ++i) {
        uint16_t h = t.dtype == "BF16" ? to_bf16(t.values[i]) : to_f16(t.values[i]);
        std::memcpy(&bytes[i * 2], &h, 2);
      }
    } else {  // e.g. "I64": 8 bytes per element
      bytes.assign(t.values.size() * 8, '\0');
    }
    header << ",\"" << name << "\":{\"dtype\":\"" << t.dtype << "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header << (i ? "," : "") << t.shape[i];
    header << "],\"data_offsets\":[" << data.size() << "," << data.size() + bytes.size() << "]}";
    data += bytes;
  }
  header << "}";
  std::string h = header.str();
  while (h.size() % 8) h += ' ';
  uint64_t n = h.size();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(h.data(), std::streamsize(h.size()));
  f.write(data.data(), std::streamsize(data.size()));
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

void write_tiny_model(const std::string& dir, const TinyModelOptions& o) {
  write_text(dir + "/config.json", tiny_config_json(o));
  write_safetensors(dir + "/model.safetensors", tiny_tensors(o));
}

}  // namespace imp::test
