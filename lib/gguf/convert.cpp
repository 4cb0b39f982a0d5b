#include "gguf/convert.h"

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "gguf/gguf.h"
#include "gguf/quants.h"
#include "gguf/writer.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

#include <cmath>
#include <cstring>

namespace imp::gguf {

namespace {

struct HfTensor {
  std::vector<int64_t> shape;
  std::vector<float> v;
};

enum class Mix { F32, Q8_0, Q4_K, Q5_K, Q6_K, Q4_K_M };

class Converter {
 public:
  Converter(const std::string& dir, Mix mix) : dir_(dir), mix_(mix) {
    c_ = load_config(dir);
    st_ = SafeTensors::open_dir(dir);
    prefix_ = st_.find("model.language_model.embed_tokens.weight") ? "model.language_model." : "model.";
    arch_ = c_.family == ModelFamily::Qwen35 ? "qwen35" : c_.family == ModelFamily::Qwen35Moe ? "qwen35moe" : "qwen3next";
  }

  void run(const std::string& out) {
    metadata();
    tokenizer();
    const int L = c_.n_layer, H = c_.n_embd;
    emit("token_embd.weight", {H, c_.n_vocab}, get(prefix_ + "embed_tokens.weight").v, -1);
    emit("output_norm.weight", {H}, folded(prefix_ + "norm.weight"), -1);
    if (!c_.tie_word_embeddings && st_.find("lm_head.weight")) emit("output.weight", {H, c_.n_vocab}, get("lm_head.weight").v, -1);
    for (int i = 0; i < L; ++i) layer(prefix_ + "layers." + std::to_string(i) + ".", i, c_.layer_kinds[i]);
    if (c_.n_mtp_layer > 0 && st_.find("mtp.fc.weight")) {
      emit(blk(L, "nextn.eh_proj.weight"), {2 * H, H}, get("mtp.fc.weight").v, L);
      emit(blk(L, "nextn.enorm.weight"), {H}, folded("mtp.pre_fc_norm_embedding.weight"), L);
      emit(blk(L, "nextn.hnorm.weight"), {H}, folded("mtp.pre_fc_norm_hidden.weight"), L);
      emit(blk(L, "nextn.shared_head_norm.weight"), {H}, folded("mtp.norm.weight"), L);
      layer("mtp.layers.0.", L, LayerKind::FullAttention);
    }
    w_.write(out);
  }

 private:
  static std::string blk(int i, const std::string& n) { return "blk." + std::to_string(i) + "." + n; }

  HfTensor get(const std::string& name) const {
    const imp::TensorInfo* t = st_.find(name);
    if (!t) fail(IMP_ERR_MISSING_TENSOR, dir_, ": missing tensor \"", name, "\"");
    if (t->dtype == DType::Other) fail(IMP_ERR_TENSOR_DTYPE, dir_, ": tensor \"", name, "\" has dtype ", t->dtype_text);
    HfTensor h;
    h.shape = t->shape;
    size_t n = 1;
    for (int64_t d : t->shape) n *= size_t(d);
    h.v.resize(n);
    to_f32(t->data, t->dtype, 0, n, h.v.data());
    return h;
  }
  std::vector<float> folded(const std::string& name) const {
    std::vector<float> v = get(name).v;
    for (float& x : v) x += 1.0f;
    return v;
  }

  void metadata() {
    Writer& w = w_;
    const std::string a = arch_ + ".";
    w.add_string("general.architecture", arch_);
    w.add_string("general.name", "imp-gguf-convert");
    const uint32_t ftype = mix_ == Mix::F32 ? 0 : mix_ == Mix::Q8_0 ? 7 : mix_ == Mix::Q4_K ? 14 : mix_ == Mix::Q5_K ? 16
                           : mix_ == Mix::Q6_K ? 18 : 15;
    w.add_u32("general.file_type", ftype);
    if (mix_ != Mix::F32) w.add_u32("general.quantization_version", 2);
    const bool mtp = c_.n_mtp_layer > 0 && st_.find("mtp.fc.weight");
    w.add_u32(a + "block_count", uint32_t(c_.n_layer + (mtp ? 1 : 0)));
    w.add_u32(a + "context_length", uint32_t(c_.n_ctx_train));
    w.add_u32(a + "embedding_length", uint32_t(c_.n_embd));
    if (!c_.is_moe) w.add_u32(a + "feed_forward_length", uint32_t(c_.n_ff));
    w.add_u32(a + "attention.head_count", uint32_t(c_.n_head));
    w.add_u32(a + "attention.head_count_kv", uint32_t(c_.n_head_kv));
    w.add_u32(a + "attention.key_length", uint32_t(c_.head_dim));
    w.add_u32(a + "attention.value_length", uint32_t(c_.head_dim));
    w.add_f32(a + "attention.layer_norm_rms_epsilon", c_.rms_norm_eps);
    w.add_f32(a + "rope.freq_base", c_.rope_theta);
    w.add_u32(a + "rope.dimension_count", uint32_t(c_.n_rot));
    if (c_.family != ModelFamily::Qwen3Next) w.add_i32_array(a + "rope.dimension_sections", {11, 11, 10, 0});
    w.add_u32(a + "ssm.conv_kernel", uint32_t(c_.lin_conv_kernel));
    w.add_u32(a + "ssm.state_size", uint32_t(c_.lin_k_dim));
    w.add_u32(a + "ssm.group_count", uint32_t(c_.lin_n_k_heads));
    w.add_u32(a + "ssm.time_step_rank", uint32_t(c_.lin_n_v_heads));
    w.add_u32(a + "ssm.inner_size", uint32_t(c_.lin_v_dim * c_.lin_n_v_heads));
    // llama.cpp describes the layer pattern by full_attention_interval only.
    int interval = 0;
    for (int k = 1; k <= c_.n_layer && !interval; ++k) {
      bool ok = true;
      for (int i = 0; i < c_.n_layer; ++i) ok = ok && (((i + 1) % k == 0) == (c_.layer_kinds[i] == LayerKind::FullAttention));
      if (ok) interval = k;
    }
    if (!interval) fail(IMP_ERR_BAD_CONFIG, dir_, ": layer_types is not periodic; GGUF (full_attention_interval) cannot describe it");
    w.add_u32(a + "full_attention_interval", uint32_t(interval));
    if (c_.is_moe) {
      w.add_u32(a + "expert_count", uint32_t(c_.n_expert));
      w.add_u32(a + "expert_used_count", uint32_t(c_.n_expert_used));
      w.add_u32(a + "expert_feed_forward_length", uint32_t(c_.n_ff_expert));
      if (c_.n_ff_shared > 0) w.add_u32(a + "expert_shared_feed_forward_length", uint32_t(c_.n_ff_shared));
      w.add_bool(a + "expert_weights_norm", c_.norm_topk_prob);
    }
    if (mtp) w.add_u32(a + "nextn_predict_layers", 1);
    if (c_.eos_token_id >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(c_.eos_token_id));
  }

  // tokenizer.ggml.* from the directory's tokenizer.json, when it has one, as convert_hf_to_gguf.py's
  // _set_vocab_gpt2 writes them: tokens padded to the model's vocab_size with unused "[PADn]", token types
  // (control for special added tokens, user-defined for the others), merges as "a b". The result is loaded back
  // to check that it gives the same tokenizer (what GGUF cannot carry is refused, IMP_ERR_TOKENIZER). From
  // tokenizer_config.json: add_bos_token, the bos / pad ids and chat_template, where present.
  void tokenizer() {
    const std::string json = join_path(dir_, "tokenizer.json");
    if (!path_exists(json)) return;
    std::unique_ptr<Tokenizer> tok = Tokenizer::load(json);
    GgufVocab v = tok->gguf_vocab(c_.n_vocab);
    Tokenizer::from_gguf_vocab(v, dir_ + " (as GGUF)");  // throws if the arrays do not make a tokenizer
    w_.add_string("tokenizer.ggml.model", v.model);
    w_.add_string("tokenizer.ggml.pre", v.pre);
    w_.add_string_array("tokenizer.ggml.tokens", v.tokens);
    w_.add_i32_array("tokenizer.ggml.token_type", v.types);
    w_.add_string_array("tokenizer.ggml.merges", v.merges);

    const std::string cfg_path = join_path(dir_, "tokenizer_config.json");
    if (!path_exists(cfg_path)) return;
    JsonDocument doc = JsonDocument::parse(read_file(cfg_path), cfg_path);
    const JsonValue cfg = doc.root();
    if (!cfg.is_object()) return;
    // A special token is a string or {"content": ...}; its id is the token whose text that is.
    auto token_of = [&](const char* key) -> int32_t {
      auto t = cfg.find(key);
      if (!t) return -1;
      if (t->is_object()) t = t->find("content");
      if (!t || !t->is_string()) return -1;
      return tok->token_id(t->as_string());
    };
    if (int32_t bos = token_of("bos_token"); bos >= 0) w_.add_u32("tokenizer.ggml.bos_token_id", uint32_t(bos));
    if (c_.eos_token_id < 0)
      if (int32_t eos = token_of("eos_token"); eos >= 0) w_.add_u32("tokenizer.ggml.eos_token_id", uint32_t(eos));
    if (int32_t pad = token_of("pad_token"); pad >= 0) w_.add_u32("tokenizer.ggml.padding_token_id", uint32_t(pad));
    if (auto b = cfg.find("add_bos_token"); b && b->is_bool()) w_.add_bool("tokenizer.ggml.add_bos_token", b->as_bool());
    if (auto ct = cfg.find("chat_template"); ct && ct->is_string()) w_.add_string("tokenizer.chat_template", ct->as_string());
  }

  // The ggml type of a tensor: vectors and kernels F32; matrices per the mix (llama.cpp's choices for Q4_K_M).
  uint32_t type_for(const std::string& name, const std::vector<int64_t>& ne, int il) const {
    if (ne.size() < 2 || mix_ == Mix::F32 || name.find("ssm_conv1d") != std::string::npos ||
        name.find("ffn_gate_inp") != std::string::npos)
      return GGML_TYPE_F32;
    uint32_t t = GGML_TYPE_Q8_0;
    switch (mix_) {
      case Mix::Q8_0: t = GGML_TYPE_Q8_0; break;
      case Mix::Q4_K: t = GGML_TYPE_Q4_K; break;
      case Mix::Q5_K: t = GGML_TYPE_Q5_K; break;
      case Mix::Q6_K: t = GGML_TYPE_Q6_K; break;
      case Mix::Q4_K_M: {
        const int n = c_.n_layer;
        const bool more_bits = il >= 0 && (il < n / 8 || il >= 7 * n / 8 || (il - n / 8) % 3 == 2);
        if (name == "output.weight") t = GGML_TYPE_Q6_K;
        else if ((name.find("attn_v.weight") != std::string::npos || name.find("ffn_down") != std::string::npos) && more_bits)
          t = GGML_TYPE_Q6_K;
        else if (name.find("attn_qkv.weight") != std::string::npos) t = GGML_TYPE_Q5_K;
        else t = GGML_TYPE_Q4_K;
        break;
      }
      case Mix::F32: break;
    }
    const int64_t cols = ne[0];
    if (cols % type_traits(t)->block != 0) t = cols % 32 == 0 ? GGML_TYPE_Q8_0 : GGML_TYPE_F32;
    return t;
  }

  void emit(const std::string& name, const std::vector<int64_t>& ne, const std::vector<float>& v, int il) {
    size_t n = 1;
    for (int64_t d : ne) n *= size_t(d);
    if (n != v.size()) fail(IMP_ERR_TENSOR_SHAPE, dir_, ": ", name, " has ", v.size(), " values, expected ", n);
    const uint32_t t = type_for(name, ne, il);
    const TypeTraits* tt = type_traits(t);
    std::vector<unsigned char> data(n / tt->block * tt->bytes);
    switch (t) {
      case GGML_TYPE_F32: std::memcpy(data.data(), v.data(), data.size()); break;
      case GGML_TYPE_Q8_0: quantize_q8_0(v.data(), data.data(), n); break;
      case GGML_TYPE_Q4_K: quantize_q4_k(v.data(), data.data(), n); break;
      case GGML_TYPE_Q5_K: quantize_q5_k(v.data(), data.data(), n); break;
      case GGML_TYPE_Q6_K: quantize_q6_k(v.data(), data.data(), n); break;
      default: fail(IMP_ERR_INTERNAL, "converter: type ", t);
    }
    w_.add_tensor(name, ne, t, std::move(data));
  }

  // Qwen3.5 value-head reorder (grouped -> tiled): tiled position p holds grouped head (p % HK) * r + p / HK.
  bool reorder() const { return c_.family != ModelFamily::Qwen3Next && c_.lin_n_k_heads != c_.lin_n_v_heads; }
  int src_head(int p) const {
    const int HK = c_.lin_n_k_heads, r = c_.lin_n_v_heads / HK;
    return (p % HK) * r + p / HK;
  }
  // Rows [row0, row0 + HV*hd) of a (rows, cols) matrix, value-head blocks of hd rows permuted.
  void reorder_rows(std::vector<float>& m, int cols, int row0, int hd) const {
    if (!reorder()) return;
    const int HV = c_.lin_n_v_heads;
    std::vector<float> src(m.begin() + size_t(row0) * cols, m.begin() + size_t(row0 + HV * hd) * cols);
    for (int p = 0; p < HV; ++p)
      std::memcpy(&m[size_t(row0 + p * hd) * cols], &src[size_t(src_head(p) * hd) * cols], sizeof(float) * size_t(hd) * cols);
  }
  void reorder_cols(std::vector<float>& m, int rows, int hd) const {
    if (!reorder()) return;
    const int HV = c_.lin_n_v_heads, cols = HV * hd;
    for (int r = 0; r < rows; ++r) {
      std::vector<float> src(m.begin() + size_t(r) * cols, m.begin() + size_t(r + 1) * cols);
      for (int p = 0; p < HV; ++p) std::memcpy(&m[size_t(r) * cols + p * hd], &src[size_t(src_head(p) * hd)], sizeof(float) * hd);
    }
  }

  void layer(const std::string& p, int i, LayerKind kind) {
    const int H = c_.n_embd, hd = c_.head_dim;
    emit(blk(i, "attn_norm.weight"), {H}, folded(p + "input_layernorm.weight"), i);
    emit(blk(i, "post_attention_norm.weight"), {H}, folded(p + "post_attention_layernorm.weight"), i);
    if (kind == LayerKind::FullAttention) {
      const std::string q = p + "self_attn.";
      emit(blk(i, "attn_q.weight"), {H, c_.n_head * 2 * hd}, get(q + "q_proj.weight").v, i);
      emit(blk(i, "attn_k.weight"), {H, c_.n_head_kv * hd}, get(q + "k_proj.weight").v, i);
      emit(blk(i, "attn_v.weight"), {H, c_.n_head_kv * hd}, get(q + "v_proj.weight").v, i);
      emit(blk(i, "attn_output.weight"), {c_.n_head * hd, H}, get(q + "o_proj.weight").v, i);
      emit(blk(i, "attn_q_norm.weight"), {hd}, folded(q + "q_norm.weight"), i);
      emit(blk(i, "attn_k_norm.weight"), {hd}, folded(q + "k_norm.weight"), i);
    } else {
      deltanet(p + "linear_attn.", i);
    }
    ffn(p + "mlp.", i);
  }

  void deltanet(const std::string& p, int i) {
    const int H = c_.n_embd, HK = c_.lin_n_k_heads, HV = c_.lin_n_v_heads, dk = c_.lin_k_dim, dv = c_.lin_v_dim;
    const int conv_dim = c_.lin_conv_dim(), K = c_.lin_conv_kernel, r = HV / HK;
    if (st_.find(p + "in_proj_qkvz.weight")) {
      // Qwen3-Next: split the per-key-head groups [q_g, k_g, v_g, z_g] into [q_all | k_all | v_all] and z_all.
      std::vector<float> qkvz = get(p + "in_proj_qkvz.weight").v, qkv(size_t(conv_dim) * H), z(size_t(HV) * dv * H);
      const int group = 2 * dk + 2 * r * dv;
      auto rows = [&](std::vector<float>& dst, int drow, int srow, int n) {
        std::memcpy(&dst[size_t(drow) * H], &qkvz[size_t(srow) * H], sizeof(float) * size_t(n) * H);
      };
      for (int g = 0; g < HK; ++g) {
        rows(qkv, g * dk, g * group, dk);
        rows(qkv, HK * dk + g * dk, g * group + dk, dk);
        rows(qkv, 2 * HK * dk + g * r * dv, g * group + 2 * dk, r * dv);
        rows(z, g * r * dv, g * group + 2 * dk + r * dv, r * dv);
      }
      emit(blk(i, "attn_qkv.weight"), {H, conv_dim}, qkv, i);
      emit(blk(i, "attn_gate.weight"), {H, HV * dv}, z, i);
      emit(blk(i, "ssm_ba.weight"), {H, 2 * HV}, get(p + "in_proj_ba.weight").v, i);
    } else {
      std::vector<float> qkv = get(p + "in_proj_qkv.weight").v, z = get(p + "in_proj_z.weight").v;
      std::vector<float> b = get(p + "in_proj_b.weight").v, a = get(p + "in_proj_a.weight").v;
      reorder_rows(qkv, H, 2 * HK * dk, dv);
      reorder_rows(z, H, 0, dv);
      reorder_rows(b, H, 0, 1);
      reorder_rows(a, H, 0, 1);
      emit(blk(i, "attn_qkv.weight"), {H, conv_dim}, qkv, i);
      emit(blk(i, "attn_gate.weight"), {H, HV * dv}, z, i);
      emit(blk(i, "ssm_beta.weight"), {H, HV}, b, i);
      emit(blk(i, "ssm_alpha.weight"), {H, HV}, a, i);
    }
    std::vector<float> conv = get(p + "conv1d.weight").v;  // (conv_dim, 1, K) or (conv_dim, K): squeezed
    reorder_rows(conv, K, 2 * HK * dk, dv);
    emit(blk(i, "ssm_conv1d.weight"), {K, conv_dim}, conv, i);
    std::vector<float> A = get(p + "A_log").v, dt = get(p + "dt_bias").v;
    for (float& x : A) x = -std::exp(x);
    reorder_rows(A, 1, 0, 1);
    reorder_rows(dt, 1, 0, 1);
    emit(blk(i, "ssm_a"), {HV}, A, i);
    emit(blk(i, "ssm_dt.bias"), {HV}, dt, i);
    emit(blk(i, "ssm_norm.weight"), {dv}, get(p + "norm.weight").v, i);  // not zero-centred: no +1
    std::vector<float> out = get(p + "out_proj.weight").v;
    reorder_cols(out, H, dv);
    emit(blk(i, "ssm_out.weight"), {HV * dv, H}, out, i);
  }

  void ffn(const std::string& p, int i) {
    const int H = c_.n_embd;
    if (!c_.is_moe) {
      emit(blk(i, "ffn_gate.weight"), {H, c_.n_ff}, get(p + "gate_proj.weight").v, i);
      emit(blk(i, "ffn_up.weight"), {H, c_.n_ff}, get(p + "up_proj.weight").v, i);
      emit(blk(i, "ffn_down.weight"), {c_.n_ff, H}, get(p + "down_proj.weight").v, i);
      return;
    }
    const int E = c_.n_expert, Fe = c_.n_ff_expert;
    emit(blk(i, "ffn_gate_inp.weight"), {H, E}, get(p + "gate.weight").v, i);
    std::vector<float> gate(size_t(E) * Fe * H), up(size_t(E) * Fe * H), down(size_t(E) * H * Fe);
    const std::string gu = st_.find(p + "experts.gate_up_proj") ? p + "experts.gate_up_proj" : p + "experts.gate_up_proj.weight";
    if (st_.find(gu)) {
      std::vector<float> all = get(gu).v;
      const std::string dn = st_.find(p + "experts.down_proj") ? p + "experts.down_proj" : p + "experts.down_proj.weight";
      down = get(dn).v;
      const size_t blk_sz = size_t(Fe) * H;
      for (int e = 0; e < E; ++e) {
        std::memcpy(&gate[e * blk_sz], &all[2 * e * blk_sz], sizeof(float) * blk_sz);
        std::memcpy(&up[e * blk_sz], &all[(2 * e + 1) * blk_sz], sizeof(float) * blk_sz);
      }
    } else {
      for (int e = 0; e < E; ++e) {
        const std::string q = p + "experts." + std::to_string(e) + ".";
        const size_t blk_sz = size_t(Fe) * H;
        std::vector<float> g = get(q + "gate_proj.weight").v, u = get(q + "up_proj.weight").v, d = get(q + "down_proj.weight").v;
        std::memcpy(&gate[e * blk_sz], g.data(), sizeof(float) * blk_sz);
        std::memcpy(&up[e * blk_sz], u.data(), sizeof(float) * blk_sz);
        std::memcpy(&down[e * blk_sz], d.data(), sizeof(float) * blk_sz);
      }
    }
    emit(blk(i, "ffn_gate_exps.weight"), {H, Fe, E}, gate, i);
    emit(blk(i, "ffn_up_exps.weight"), {H, Fe, E}, up, i);
    emit(blk(i, "ffn_down_exps.weight"), {Fe, H, E}, down, i);
    if (c_.n_ff_shared > 0) {
      const int Fs = c_.n_ff_shared;
      emit(blk(i, "ffn_gate_shexp.weight"), {H, Fs}, get(p + "shared_expert.gate_proj.weight").v, i);
      emit(blk(i, "ffn_up_shexp.weight"), {H, Fs}, get(p + "shared_expert.up_proj.weight").v, i);
      emit(blk(i, "ffn_down_shexp.weight"), {Fs, H}, get(p + "shared_expert.down_proj.weight").v, i);
      emit(blk(i, "ffn_gate_inp_shexp.weight"), {H}, get(p + "shared_expert_gate.weight").v, i);
    }
  }

  std::string dir_;
  Mix mix_;
  ModelConfig c_;
  SafeTensors st_;
  std::string prefix_, arch_;
  Writer w_;
};

}  // namespace

void convert_hf_dir(const std::string& dir, const std::string& out_path, const std::string& type) {
  Mix mix;
  if (type == "f32") mix = Mix::F32;
  else if (type == "q8_0") mix = Mix::Q8_0;
  else if (type == "q4_k") mix = Mix::Q4_K;
  else if (type == "q5_k") mix = Mix::Q5_K;
  else if (type == "q6_k") mix = Mix::Q6_K;
  else if (type == "q4_k_m") mix = Mix::Q4_K_M;
  else fail(IMP_ERR_INVALID_ARGUMENT, "unknown output type \"", type, "\" (f32, q8_0, q4_k, q5_k, q6_k, q4_k_m)");
  Converter(dir, mix).run(out_path);
}

void dequantize_file(const std::string& in_path, const std::string& out_path) {
  std::unique_ptr<File> f = File::open(in_path);
  Writer w(uint32_t(f->alignment()));
  for (size_t k = 0; k < f->metadata().size(); ++k) {
    const auto& [key, v] = f->metadata()[k];
    if (key == "general.alignment") continue;
    if (key == "general.file_type") { w.add_u32(key, 0); continue; }
    w.add_raw(key, uint32_t(v.type), f->raw_value(k));
  }
  for (const TensorInfo& t : f->tensors()) {
    const size_t n = size_t(t.n_elements());
    std::vector<float> v(n);
    switch (t.type) {
      case GGML_TYPE_F32: std::memcpy(v.data(), t.data, n * 4); break;
      case GGML_TYPE_F16: to_f32(t.data, DType::F16, 0, n, v.data()); break;
      case GGML_TYPE_BF16: to_f32(t.data, DType::BF16, 0, n, v.data()); break;
      case GGML_TYPE_Q8_0: dequantize_q8_0(t.data, v.data(), n); break;
      case GGML_TYPE_Q4_K: dequantize_q4_k(t.data, v.data(), n); break;
      case GGML_TYPE_Q5_K: dequantize_q5_k(t.data, v.data(), n); break;
      case GGML_TYPE_Q6_K: dequantize_q6_k(t.data, v.data(), n); break;
      default: fail(IMP_ERR_TENSOR_DTYPE, in_path, ": tensor \"", t.name, "\" has type ", type_name(t.type), ", which libimp cannot dequantize");
    }
    std::vector<unsigned char> bytes(n * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    w.add_tensor(t.name, std::vector<int64_t>(t.ne, t.ne + t.n_dims), GGML_TYPE_F32, std::move(bytes));
  }
  w.write(out_path);
}

}  // namespace imp::gguf
