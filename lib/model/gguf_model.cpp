// GGUF models as llama.cpp's converter writes them (architectures qwen35, qwen35moe, qwen3next), mapped onto the
// same ModelConfig / ModelWeights as the Hugging Face path so the forward pass computes the same function.
//
// What the converter did to the Hugging Face tensors, and how it is undone here:
//   - zero-centred RMSNorm weights (input/post-attention, q/k norms, final norm, MTP enorm/hnorm/shared_head_norm)
//     are stored with the +1 folded in: used as they are. The DeltaNet output norm (ssm_norm) never had it.
//   - A_log is stored as ssm_a = -exp(A_log): used directly as A. dt_bias is ssm_dt.bias.
//   - conv1d is squeezed to ne [K, conv_dim].
//   - Qwen3.5/3.6 (qwen35, qwen35moe): value heads are reordered grouped -> tiled when HK != HV; the layer reads
//     key head j % HK instead of j / r (DeltaNetWeights::v_heads_tiled), which is the same function.
//   - Qwen3-Next: in_proj_qkvz is either kept fused (ssm_in, Hugging Face layout) or split into attn_qkv
//     ([q_all | k_all | v_all], grouped value order) and attn_gate (z); in_proj_ba stays fused (ssm_ba) or is
//     split into ssm_beta / ssm_alpha.
//   - NextN (MTP): block_count = trunk + nextn_predict_layers; the MTP layer is blk.L.* with L = the trunk's layer
//     count, plus blk.L.nextn.{eh_proj, enorm, hnorm, shared_head_norm} and optional nextn.embed_tokens /
//     nextn.shared_head_head that default to token_embd / output.
//   - MoE experts are stacked: ffn_{gate,up}_exps ne [H, Fe, E], ffn_down_exps ne [Fe, H, E] (or fused
//     ffn_gate_up_exps ne [H, 2Fe, E], gate first).
#include "model/model.h"

#include "core/error.h"
#include "gguf/gguf.h"
#include "gguf/quants.h"

#include <cmath>
#include <cstring>

namespace imp {

namespace {

using gguf::File;
using gguf::TensorInfo;

DType dtype_of(uint32_t t) {
  switch (t) {
    case gguf::GGML_TYPE_F32: return DType::F32;
    case gguf::GGML_TYPE_F16: return DType::F16;
    case gguf::GGML_TYPE_BF16: return DType::BF16;
    case gguf::GGML_TYPE_Q8_0: return DType::Q8_0;
    case gguf::GGML_TYPE_Q4_K: return DType::Q4_K;
    case gguf::GGML_TYPE_Q5_K: return DType::Q5_K;
    case gguf::GGML_TYPE_Q6_K: return DType::Q6_K;
    default: return DType::Other;
  }
}

class Meta {
 public:
  Meta(const File& f, std::string arch) : f_(f), arch_(std::move(arch)) {}

  const gguf::Value* get(const std::string& key) const { return f_.find(arch_ + "." + key); }

  // An integer; a per-layer array gives its first non-zero entry (or 0).
  std::optional<int64_t> integer(const std::string& key) const {
    const gguf::Value* v = get(key);
    if (!v) return std::nullopt;
    if (v->type == gguf::ValueType::ARRAY) {
      if (!v->raw) bad(key, "is an array of ", gguf::value_type_name(v->elem));
      for (uint64_t k = 0; k < v->n; ++k) {
        auto x = v->int_at(k);
        if (!x) bad(key, "holds a non-integer");
        if (*x != 0) return x;
      }
      return int64_t(0);
    }
    auto x = v->as_int();
    if (!v->is_int() || !x) bad(key, "is not an integer (", gguf::value_type_name(v->type), ")");
    return x;
  }
  int count(const std::string& key, std::optional<int> dflt = std::nullopt, bool allow_zero = false) const {
    auto x = integer(key);
    if (!x) {
      if (dflt) return *dflt;
      fail(IMP_ERR_BAD_CONFIG, f_.name(), ": GGUF metadata ", arch_, ".", key, " is missing");
    }
    if (*x < (allow_zero ? 0 : 1) || *x > 1000000000) bad(key, "is out of range (", *x, ")");
    return int(*x);
  }
  double number(const std::string& key, double dflt) const {
    const gguf::Value* v = get(key);
    if (!v) return dflt;
    auto x = v->as_number();
    if (!x || !std::isfinite(*x)) bad(key, "is not a number");
    return *x;
  }
  bool boolean(const std::string& key, bool dflt) const {
    const gguf::Value* v = get(key);
    if (!v) return dflt;
    if (v->type != gguf::ValueType::BOOL) bad(key, "is not a bool");
    return v->u != 0;
  }

  template <typename... Parts>
  [[noreturn]] void bad(const std::string& key, const Parts&... parts) const {
    fail(IMP_ERR_BAD_CONFIG, f_.name(), ": GGUF metadata ", arch_, ".", key, " ", parts...);
  }

 private:
  const File& f_;
  std::string arch_;
};

std::string blk(int i, const char* name) { return "blk." + std::to_string(i) + "." + name; }

ModelConfig config_from_gguf(const File& f) {
  const gguf::Value* a = f.find("general.architecture");
  if (!a) fail(IMP_ERR_BAD_CONFIG, f.name(), ": GGUF has no general.architecture");
  if (a->type != gguf::ValueType::STRING) fail(IMP_ERR_BAD_CONFIG, f.name(), ": general.architecture is not a string");
  const std::string arch = a->str;
  ModelConfig c;
  if (arch == "qwen35") c.family = ModelFamily::Qwen35;
  else if (arch == "qwen35moe") c.family = ModelFamily::Qwen35Moe;
  else if (arch == "qwen3next") c.family = ModelFamily::Qwen3Next;
  else fail(IMP_ERR_UNKNOWN_ARCH, f.name(), ": GGUF architecture \"", arch, "\" is not supported (libimp runs qwen35, qwen35moe, qwen3next)");
  c.model_type = family_name(c.family);
  Meta m(f, arch);

  c.n_embd = m.count("embedding_length");
  const int blocks = m.count("block_count");
  c.n_mtp_layer = m.count("nextn_predict_layers", 0, true);
  if (c.n_mtp_layer >= blocks) m.bad("nextn_predict_layers", "(", c.n_mtp_layer, ") leaves no trunk layers of ", blocks);
  if (c.n_mtp_layer > 1) m.bad("nextn_predict_layers", "is ", c.n_mtp_layer, "; libimp runs one MTP layer");
  c.n_layer = blocks - c.n_mtp_layer;
  c.n_ctx_train = m.count("context_length", 0, true);
  c.rms_norm_eps = float(m.number("attention.layer_norm_rms_epsilon", 1e-6));
  c.n_head = m.count("attention.head_count");
  c.n_head_kv = m.count("attention.head_count_kv");
  c.head_dim = m.count("attention.key_length", c.n_embd / c.n_head);
  if (m.count("attention.value_length", c.head_dim) != c.head_dim)
    m.bad("attention.value_length", "differs from attention.key_length (unsupported)");
  c.n_rot = m.count("rope.dimension_count", c.head_dim / 4);
  if (c.n_rot % 2 != 0 || c.n_rot > c.head_dim) m.bad("rope.dimension_count", "must be even and at most the head size");
  c.rope_theta = float(m.number("rope.freq_base", 1e7));
  c.lin_conv_kernel = m.count("ssm.conv_kernel", 4);
  c.lin_k_dim = m.count("ssm.state_size");
  c.lin_n_k_heads = m.count("ssm.group_count");
  c.lin_n_v_heads = m.count("ssm.time_step_rank");
  const int inner = m.count("ssm.inner_size");
  if (inner % c.lin_n_v_heads != 0) m.bad("ssm.inner_size", "is not a multiple of ssm.time_step_rank");
  c.lin_v_dim = inner / c.lin_n_v_heads;
  if (c.lin_n_v_heads % c.lin_n_k_heads != 0) m.bad("ssm.time_step_rank", "is not a multiple of ssm.group_count");
  if (c.n_head % c.n_head_kv != 0) m.bad("attention.head_count", "is not a multiple of attention.head_count_kv");

  // Layer kinds: a full-attention layer has attn_q, a Gated DeltaNet layer does not (llama.cpp derives the same
  // from full_attention_interval; the tensors are what the file really holds).
  for (int i = 0; i < c.n_layer; ++i)
    c.layer_kinds.push_back(f.tensor(blk(i, "attn_q.weight")) ? LayerKind::FullAttention : LayerKind::LinearAttention);
  if (auto iv = m.integer("full_attention_interval"); iv && *iv > 0)
    for (int i = 0; i < c.n_layer; ++i)
      if ((((i + 1) % *iv) == 0) != (c.layer_kinds[i] == LayerKind::FullAttention) && f.tensor(blk(i, "attn_norm.weight")))
        m.bad("full_attention_interval", "(", *iv, ") disagrees with the tensors of layer ", i);

  c.n_expert = m.count("expert_count", 0, true);
  c.is_moe = c.n_expert > 0;
  if (c.family == ModelFamily::Qwen35Moe && !c.is_moe) m.bad("expert_count", "is missing or 0 for a qwen35moe model");
  if (c.is_moe) {
    c.n_expert_used = m.count("expert_used_count");
    c.n_ff_expert = m.count("expert_feed_forward_length");
    c.n_ff_shared = m.count("expert_shared_feed_forward_length", 0, true);
    if (c.n_ff_shared == 0)
      if (const TensorInfo* t = f.tensor("blk.0.ffn_gate_shexp.weight")) c.n_ff_shared = int(t->ne[1]);
    c.norm_topk_prob = m.boolean("expert_weights_norm", true);
    if (c.n_expert_used > c.n_expert) m.bad("expert_used_count", "exceeds expert_count");
  } else {
    c.n_ff = m.count("feed_forward_length");
  }

  const TensorInfo* emb = f.tensor("token_embd.weight");
  if (!emb) fail(IMP_ERR_MISSING_TENSOR, f.name(), ": missing tensor \"token_embd.weight\"");
  if (emb->n_dims != 2 || emb->ne[0] != c.n_embd || emb->ne[1] <= 0 || emb->ne[1] > 100000000)
    fail(IMP_ERR_TENSOR_SHAPE, f.name(), ": tensor \"token_embd.weight\" has shape ", emb->shape_str(), ", expected [", c.n_embd, ", n_vocab]");
  c.n_vocab = int(emb->ne[1]);
  if (auto v = m.integer("vocab_size"); v && *v != c.n_vocab) m.bad("vocab_size", "(", *v, ") disagrees with token_embd (", c.n_vocab, ")");
  c.tie_word_embeddings = f.tensor("output.weight") == nullptr;
  if (const gguf::Value* e = f.find("tokenizer.ggml.eos_token_id")) {
    auto x = e->as_int();
    if (x && *x >= 0 && *x < c.n_vocab) c.eos_token_id = int(*x);
  }
  return c;
}

class GgufBinder {
 public:
  GgufBinder(const ModelConfig& c, const File& f, ModelWeights& w) : c_(c), f_(f), w_(w) {}

  bool has(const std::string& name) const { return f_.tensor(name) != nullptr; }

  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  }

  // The tensor with ggml shape ne (innermost first); trailing 1s may be left out by either side.
  const TensorInfo& tensor(const std::string& name, std::vector<int64_t> ne) const {
    const TensorInfo* t = f_.tensor(name);
    if (!t) fail(IMP_ERR_MISSING_TENSOR, f_.name(), ": missing tensor \"", name, "\" (", family_name(c_.family), " needs it, ggml shape ", shape_str(ne), ")");
    if (dtype_of(t->type) == DType::Other)
      fail(IMP_ERR_TENSOR_DTYPE, f_.name(), ": tensor \"", name, "\" has type ", gguf::type_name(t->type),
           "; libimp reads F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K");
    bool ok = true;
    for (int d = 0; d < 4; ++d) ok = ok && t->ne[d] == (d < int(ne.size()) ? ne[d] : 1);
    if (!ok) fail(IMP_ERR_TENSOR_SHAPE, f_.name(), ": tensor \"", name, "\" has ggml shape ", t->shape_str(), ", the config implies ", shape_str(ne));
    return *t;
  }

  Mat mat(const std::string& name, int rows, int cols) const {
    const TensorInfo& t = tensor(name, {cols, rows});
    return Mat{t.data, dtype_of(t.type), rows, cols};
  }

  std::vector<float> vec(const std::string& name, std::vector<int64_t> ne) const {
    const TensorInfo& t = tensor(name, ne);
    std::vector<float> out(size_t(t.n_elements()));
    to_f32(t.data, dtype_of(t.type), 0, out.size(), out.data());
    return out;
  }
  std::vector<float> vec(const std::string& name, int n) const { return vec(name, std::vector<int64_t>{n}); }

  // Rows [rows of block g: first_row + g*stride .. + n] of a matrix gathered into an owned copy (each row of any
  // ggml type is a whole number of blocks, so rows move as bytes).
  Mat gather_rows(const Mat& src, const std::vector<int>& rows) {
    const size_t rb = row_bytes(src.dtype, size_t(src.cols));
    std::vector<unsigned char> buf(rb * rows.size());
    for (size_t k = 0; k < rows.size(); ++k)
      std::memcpy(&buf[k * rb], static_cast<const unsigned char*>(src.data) + size_t(rows[k]) * rb, rb);
    w_.owned.push_back(std::move(buf));
    return Mat{w_.owned.back().data(), src.dtype, int(rows.size()), src.cols};
  }

  void attention(int i, FullAttentionWeights& a) const {
    const int H = c_.n_embd, hd = c_.head_dim;
    a.q = mat(blk(i, "attn_q.weight"), c_.n_head * 2 * hd, H);
    a.k = mat(blk(i, "attn_k.weight"), c_.n_head_kv * hd, H);
    a.v = mat(blk(i, "attn_v.weight"), c_.n_head_kv * hd, H);
    a.o = mat(blk(i, "attn_output.weight"), H, c_.n_head * hd);
    a.q_norm = vec(blk(i, "attn_q_norm.weight"), hd);  // +1 already folded in
    a.k_norm = vec(blk(i, "attn_k_norm.weight"), hd);
  }

  void deltanet(int i, DeltaNetWeights& d) {
    const int H = c_.n_embd, HK = c_.lin_n_k_heads, HV = c_.lin_n_v_heads, dk = c_.lin_k_dim, dv = c_.lin_v_dim;
    const int conv_dim = c_.lin_conv_dim(), K = c_.lin_conv_kernel, r = HV / HK;
    if (has(blk(i, "ssm_in.weight"))) {
      // Qwen3-Next, fused as in Hugging Face: qkvz and ba grouped per key head.
      d.fused = true;
      d.qkvz = mat(blk(i, "ssm_in.weight"), 2 * HK * dk + 2 * HV * dv, H);
      d.ba = mat(blk(i, "ssm_ba.weight"), 2 * HV, H);
    } else {
      d.qkv = mat(blk(i, "attn_qkv.weight"), conv_dim, H);
      d.z = mat(blk(i, "attn_gate.weight"), HV * dv, H);
      if (has(blk(i, "ssm_ba.weight"))) {
        // Fused [b_g (r) | a_g (r)] per key head g: split into b and a rows.
        Mat ba = mat(blk(i, "ssm_ba.weight"), 2 * HV, H);
        std::vector<int> rb, ra;
        for (int g = 0; g < HK; ++g)
          for (int j = 0; j < r; ++j) rb.push_back(g * 2 * r + j), ra.push_back(g * 2 * r + r + j);
        d.b = gather_rows(ba, rb);
        d.a = gather_rows(ba, ra);
      } else {
        d.b = mat(blk(i, "ssm_beta.weight"), HV, H);
        d.a = mat(blk(i, "ssm_alpha.weight"), HV, H);
      }
    }
    d.conv = vec(blk(i, "ssm_conv1d.weight"), {K, conv_dim});
    d.A = vec(blk(i, "ssm_a"), HV);  // already -exp(A_log)
    d.dt_bias = vec(blk(i, "ssm_dt.bias"), HV);
    d.norm = vec(blk(i, "ssm_norm.weight"), dv);
    d.out = mat(blk(i, "ssm_out.weight"), H, HV * dv);
    d.v_heads_tiled = c_.family != ModelFamily::Qwen3Next && HK != HV;
  }

  void ffn(int i, FfnWeights& f) {
    const int H = c_.n_embd;
    if (!c_.is_moe) {
      f.gate = mat(blk(i, "ffn_gate.weight"), c_.n_ff, H);
      f.up = mat(blk(i, "ffn_up.weight"), c_.n_ff, H);
      f.down = mat(blk(i, "ffn_down.weight"), H, c_.n_ff);
      return;
    }
    const int E = c_.n_expert, Fe = c_.n_ff_expert;
    f.router = mat(blk(i, "ffn_gate_inp.weight"), E, H);
    f.exp_gate.resize(E);
    f.exp_up.resize(E);
    f.exp_down.resize(E);
    const TensorInfo& dn = tensor(blk(i, "ffn_down_exps.weight"), {Fe, H, E});
    Mat all_dn{dn.data, dtype_of(dn.type), E * H, Fe};
    if (has(blk(i, "ffn_gate_up_exps.weight"))) {
      const TensorInfo& gu = tensor(blk(i, "ffn_gate_up_exps.weight"), {H, 2 * Fe, E});
      Mat all{gu.data, dtype_of(gu.type), E * 2 * Fe, H};
      for (int e = 0; e < E; ++e) f.exp_gate[e] = all.row_block(e * 2 * Fe, Fe), f.exp_up[e] = all.row_block(e * 2 * Fe + Fe, Fe);
    } else {
      const TensorInfo& g = tensor(blk(i, "ffn_gate_exps.weight"), {H, Fe, E});
      const TensorInfo& u = tensor(blk(i, "ffn_up_exps.weight"), {H, Fe, E});
      Mat all_g{g.data, dtype_of(g.type), E * Fe, H}, all_u{u.data, dtype_of(u.type), E * Fe, H};
      for (int e = 0; e < E; ++e) f.exp_gate[e] = all_g.row_block(e * Fe, Fe), f.exp_up[e] = all_u.row_block(e * Fe, Fe);
    }
    for (int e = 0; e < E; ++e) f.exp_down[e] = all_dn.row_block(e * H, H);
    if (c_.n_ff_shared > 0) {
      const int Fs = c_.n_ff_shared;
      f.shared_gate = mat(blk(i, "ffn_gate_shexp.weight"), Fs, H);
      f.shared_up = mat(blk(i, "ffn_up_shexp.weight"), Fs, H);
      f.shared_down = mat(blk(i, "ffn_down_shexp.weight"), H, Fs);
      const TensorInfo& sg = tensor(blk(i, "ffn_gate_inp_shexp.weight"), {H});  // [H] or [H, 1]
      f.shared_expert_gate = Mat{sg.data, dtype_of(sg.type), 1, H};
    }
  }

  void layer(int i, LayerKind kind, LayerWeights& l) {
    const int H = c_.n_embd;
    l.kind = kind;
    l.input_norm = vec(blk(i, "attn_norm.weight"), H);
    l.post_norm = vec(blk(i, "post_attention_norm.weight"), H);
    if (kind == LayerKind::FullAttention) attention(i, l.attn);
    else deltanet(i, l.lin);
    ffn(i, l.ffn);
  }

  // An optional per-NextN copy of a shared tensor must equal the shared one (the forward pass shares them).
  void check_same(const std::string& name, const std::string& shared) const {
    const TensorInfo* t = f_.tensor(name);
    const TensorInfo* s = f_.tensor(shared);
    if (!t || !s) return;
    bool same = t->type == s->type && t->nbytes == s->nbytes && std::memcmp(t->ne, s->ne, sizeof t->ne) == 0 &&
                (t->data == s->data || std::memcmp(t->data, s->data, size_t(t->nbytes)) == 0);
    if (!same) fail(IMP_ERR_UNSUPPORTED, f_.name(), ": tensor \"", name, "\" differs from \"", shared, "\"; libimp's MTP head shares the trunk's");
  }

 private:
  const ModelConfig& c_;
  const File& f_;
  ModelWeights& w_;
};

}  // namespace

std::unique_ptr<Model> load_gguf_model(const std::string& path) {
  auto m = std::make_unique<Model>();
  m->path = path;
  std::shared_ptr<const gguf::File> file = gguf::File::open(path);
  m->gguf = file;
  m->config = config_from_gguf(*file);
  const ModelConfig& c = m->config;
  ModelWeights& w = m->weights;
  GgufBinder b(c, *file, w);
  w.embed = b.mat("token_embd.weight", c.n_vocab, c.n_embd);
  w.lm_head = c.tie_word_embeddings ? w.embed : b.mat("output.weight", c.n_vocab, c.n_embd);
  w.final_norm = b.vec("output_norm.weight", c.n_embd);
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) b.layer(i, c.layer_kinds[i], w.layers[i]);
  const int L = c.n_layer;
  if (c.n_mtp_layer > 0 && b.has(blk(L, "nextn.eh_proj.weight"))) {
    w.has_mtp = true;
    MtpWeights& mt = w.mtp;
    mt.fc = b.mat(blk(L, "nextn.eh_proj.weight"), c.n_embd, 2 * c.n_embd);
    mt.norm_embed = b.vec(blk(L, "nextn.enorm.weight"), c.n_embd);
    mt.norm_hidden = b.vec(blk(L, "nextn.hnorm.weight"), c.n_embd);
    mt.norm_out = b.has(blk(L, "nextn.shared_head_norm.weight")) ? b.vec(blk(L, "nextn.shared_head_norm.weight"), c.n_embd)
                                                                  : w.final_norm;
    b.check_same(blk(L, "nextn.embed_tokens.weight"), "token_embd.weight");
    b.check_same(blk(L, "nextn.shared_head_head.weight"), c.tie_word_embeddings ? "token_embd.weight" : "output.weight");
    b.layer(L, LayerKind::FullAttention, mt.layer);
  }
  return m;
}

}  // namespace imp
