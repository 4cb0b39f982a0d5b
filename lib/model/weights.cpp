#include "model/weights.h"

#include "core/error.h"
#include "core/half.h"
#include "gguf/quants.h"

#include <cmath>
#include <sstream>

namespace imp {

Mat Mat::row_block(int first_row, int n_rows) const {
  Mat m = *this;
  m.data = static_cast<const unsigned char*>(data) + size_t(first_row) * row_bytes(dtype, size_t(cols));
  m.rows = n_rows;
  return m;
}

void to_f32(const void* data, DType dtype, size_t offset, size_t n, float* out) {
  switch (dtype) {
    case DType::F32: {
      const float* p = static_cast<const float*>(data) + offset;
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
      break;
    }
    case DType::BF16: bf16_to_f32(static_cast<const uint16_t*>(data) + offset, out, n); break;
    case DType::F16: f16_to_f32(static_cast<const uint16_t*>(data) + offset, out, n); break;
    case DType::Q8_0: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: {
      const size_t bs = dtype_block_size(dtype);
      if (offset % bs != 0 || n % bs != 0) fail(IMP_ERR_INTERNAL, "to_f32: ", dtype_name(dtype), " range not block-aligned");
      const unsigned char* p = static_cast<const unsigned char*>(data) + row_bytes(dtype, offset);
      if (dtype == DType::Q8_0) gguf::dequantize_q8_0(p, out, n);
      else if (dtype == DType::Q4_K) gguf::dequantize_q4_k(p, out, n);
      else if (dtype == DType::Q5_K) gguf::dequantize_q5_k(p, out, n);
      else gguf::dequantize_q6_k(p, out, n);
      break;
    }
    case DType::Other: fail(IMP_ERR_INTERNAL, "to_f32 on an unsupported dtype");
  }
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

class Binder {
 public:
  Binder(const ModelConfig& c, const SafeTensors& st) : c_(c), st_(st) {}

  bool has(const std::string& name) const { return st_.find(name) != nullptr; }

  const TensorInfo& tensor(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorInfo* t = st_.find(name);
    if (!t) fail(IMP_ERR_MISSING_TENSOR, "missing tensor \"", name, "\" (", family_name(c_.family), " needs it, shape ", shape_str(shape), ")");
    if (t->dtype == DType::Other)
      fail(IMP_ERR_TENSOR_DTYPE, "tensor \"", name, "\" has dtype ", t->dtype_text, "; libimp reads BF16, F16 and F32");
    if (t->shape != shape)
      fail(IMP_ERR_TENSOR_SHAPE, "tensor \"", name, "\" has shape ", shape_str(t->shape), ", the config implies ", shape_str(shape));
    return *t;
  }

  Mat mat(const std::string& name, int rows, int cols) const {
    const TensorInfo& t = tensor(name, {rows, cols});
    return Mat{t.data, t.dtype, rows, cols};
  }

  std::vector<float> vec(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorInfo& t = tensor(name, shape);
    size_t n = 1;
    for (int64_t d : shape) n *= size_t(d);
    std::vector<float> out(n);
    to_f32(t.data, t.dtype, 0, n, out.data());
    return out;
  }
  std::vector<float> vec(const std::string& name, int n) const { return vec(name, std::vector<int64_t>{n}); }

  // Zero-centred RMSNorm weights are stored as offsets; the forward pass multiplies by 1 + w.
  std::vector<float> norm(const std::string& name, int n) const {
    std::vector<float> w = vec(name, n);
    for (float& x : w) x += 1.0f;
    return w;
  }

  void attention(const std::string& p, FullAttentionWeights& a) const {
    const int H = c_.n_embd, hd = c_.head_dim;
    a.q = mat(p + "q_proj.weight", c_.n_head * 2 * hd, H);
    a.k = mat(p + "k_proj.weight", c_.n_head_kv * hd, H);
    a.v = mat(p + "v_proj.weight", c_.n_head_kv * hd, H);
    a.o = mat(p + "o_proj.weight", H, c_.n_head * hd);
    a.q_norm = norm(p + "q_norm.weight", hd);
    a.k_norm = norm(p + "k_norm.weight", hd);
  }

  void deltanet(const std::string& p, DeltaNetWeights& d) const {
    const int H = c_.n_embd, HK = c_.lin_n_k_heads, HV = c_.lin_n_v_heads, dk = c_.lin_k_dim, dv = c_.lin_v_dim;
    const int conv_dim = c_.lin_conv_dim(), K = c_.lin_conv_kernel;
    if (has(p + "in_proj_qkvz.weight")) {
      d.fused = true;
      d.qkvz = mat(p + "in_proj_qkvz.weight", 2 * HK * dk + 2 * HV * dv, H);
      d.ba = mat(p + "in_proj_ba.weight", 2 * HV, H);
    } else {
      d.qkv = mat(p + "in_proj_qkv.weight", conv_dim, H);
      d.z = mat(p + "in_proj_z.weight", HV * dv, H);
      d.b = mat(p + "in_proj_b.weight", HV, H);
      d.a = mat(p + "in_proj_a.weight", HV, H);
    }
    // conv1d.weight is (conv_dim, 1, K) as PyTorch stores a depthwise Conv1d; accept it squeezed too.
    const TensorInfo* cw = st_.find(p + "conv1d.weight");
    if (cw && cw->shape.size() == 2) d.conv = vec(p + "conv1d.weight", {conv_dim, K});
    else d.conv = vec(p + "conv1d.weight", {conv_dim, 1, K});
    std::vector<float> A_log = vec(p + "A_log", HV);
    d.A.resize(HV);
    for (int j = 0; j < HV; ++j) d.A[j] = -std::exp(A_log[j]);
    d.dt_bias = vec(p + "dt_bias", HV);
    d.norm = vec(p + "norm.weight", dv);
    d.out = mat(p + "out_proj.weight", H, HV * dv);
  }

  void ffn(const std::string& p, FfnWeights& f) const {
    const int H = c_.n_embd;
    if (!c_.is_moe) {
      f.gate = mat(p + "gate_proj.weight", c_.n_ff, H);
      f.up = mat(p + "up_proj.weight", c_.n_ff, H);
      f.down = mat(p + "down_proj.weight", H, c_.n_ff);
      return;
    }
    const int E = c_.n_expert, Fe = c_.n_ff_expert;
    f.router = mat(p + "gate.weight", E, H);
    f.exp_gate.resize(E);
    f.exp_up.resize(E);
    f.exp_down.resize(E);
    std::string fused_gu = has(p + "experts.gate_up_proj") ? p + "experts.gate_up_proj" : p + "experts.gate_up_proj.weight";
    if (has(fused_gu)) {
      // Fused experts: gate_up_proj (E, 2*Fe, H) with gate rows first, down_proj (E, H, Fe).
      std::string fused_down = has(p + "experts.down_proj") ? p + "experts.down_proj" : p + "experts.down_proj.weight";
      const TensorInfo& gu = tensor(fused_gu, {E, 2 * Fe, H});
      const TensorInfo& dn = tensor(fused_down, {E, H, Fe});
      for (int e = 0; e < E; ++e) {
        Mat all_gu{gu.data, gu.dtype, E * 2 * Fe, H};
        f.exp_gate[e] = all_gu.row_block(e * 2 * Fe, Fe);
        f.exp_up[e] = all_gu.row_block(e * 2 * Fe + Fe, Fe);
        Mat all_dn{dn.data, dn.dtype, E * H, Fe};
        f.exp_down[e] = all_dn.row_block(e * H, H);
      }
    } else {
      for (int e = 0; e < E; ++e) {
        std::string q = p + "experts." + std::to_string(e) + ".";
        f.exp_gate[e] = mat(q + "gate_proj.weight", Fe, H);
        f.exp_up[e] = mat(q + "up_proj.weight", Fe, H);
        f.exp_down[e] = mat(q + "down_proj.weight", H, Fe);
      }
    }
    if (c_.n_ff_shared > 0) {
      const int Fs = c_.n_ff_shared;
      f.shared_gate = mat(p + "shared_expert.gate_proj.weight", Fs, H);
      f.shared_up = mat(p + "shared_expert.up_proj.weight", Fs, H);
      f.shared_down = mat(p + "shared_expert.down_proj.weight", H, Fs);
      f.shared_expert_gate = mat(p + "shared_expert_gate.weight", 1, H);
    }
  }

  void layer(const std::string& p, LayerKind kind, LayerWeights& l) const {
    const int H = c_.n_embd;
    l.kind = kind;
    l.input_norm = norm(p + "input_layernorm.weight", H);
    l.post_norm = norm(p + "post_attention_layernorm.weight", H);
    if (kind == LayerKind::FullAttention) attention(p + "self_attn.", l.attn);
    else deltanet(p + "linear_attn.", l.lin);
    ffn(p + "mlp.", l.ffn);
  }

 private:
  const ModelConfig& c_;
  const SafeTensors& st_;
};

}  // namespace

ModelWeights bind_weights(const ModelConfig& c, const SafeTensors& st) {
  Binder b(c, st);
  // Qwen3.5/3.6 multimodal repos prefix the text model with model.language_model.; text-only ones with model.
  std::string prefix = b.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model.";
  ModelWeights w;
  w.embed = b.mat(prefix + "embed_tokens.weight", c.n_vocab, c.n_embd);
  if (b.has("lm_head.weight") && !c.tie_word_embeddings) w.lm_head = b.mat("lm_head.weight", c.n_vocab, c.n_embd);
  else if (c.tie_word_embeddings) w.lm_head = w.embed;
  else w.lm_head = b.mat("lm_head.weight", c.n_vocab, c.n_embd);  // reports the missing tensor
  w.final_norm = b.norm(prefix + "norm.weight", c.n_embd);
  w.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) b.layer(prefix + "layers." + std::to_string(i) + ".", c.layer_kinds[i], w.layers[i]);

  // The MTP head is optional: a config may announce it while a quantised or trimmed checkpoint drops it.
  if (c.n_mtp_layer > 0 && b.has("mtp.fc.weight")) {
    w.has_mtp = true;
    MtpWeights& m = w.mtp;
    m.fc = b.mat("mtp.fc.weight", c.n_embd, 2 * c.n_embd);
    m.norm_embed = b.norm("mtp.pre_fc_norm_embedding.weight", c.n_embd);
    m.norm_hidden = b.norm("mtp.pre_fc_norm_hidden.weight", c.n_embd);
    m.norm_out = b.norm("mtp.norm.weight", c.n_embd);
    b.layer("mtp.layers.0.", LayerKind::FullAttention, m.layer);
  }
  return w;
}

}  // namespace imp
