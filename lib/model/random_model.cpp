// Random-weight models for benchmarks: shapes from config.json, matrices as placeholders (see random_model.h).
#include "model/random_model.h"

#include "core/error.h"
#include "core/file.h"

#include <cmath>
#include <random>
#include <sys/stat.h>

namespace imp {

RandomWeightsType parse_random_weights_type(const std::string& name) {
  if (name == "bf16") return RandomWeightsType::BF16;
  if (name == "f16") return RandomWeightsType::F16;
  if (name == "f32") return RandomWeightsType::F32;
  if (name == "q8_0") return RandomWeightsType::Q8_0;
  if (name == "q4_k_m") return RandomWeightsType::Q4_K_M;
  fail(IMP_ERR_INVALID_ARGUMENT, "unknown random weight type '", name, "' (bf16, f16, f32, q8_0, q4_k_m)");
}

namespace {

// Which stored type a matrix gets. `role` is what llama.cpp's Q4_K_M mix looks at.
enum class Role { Plain, Favoured, Small };

class Builder {
 public:
  Builder(Model& m, RandomWeightsType type, uint64_t seed) : m_(m), type_(type), rng_(seed) {}

  Mat mat(int rows, int cols, Role role = Role::Plain) {
    m_.placeholders.push_back(0);
    Mat w;
    w.data = &m_.placeholders.back();
    m_.placeholder_set.insert(w.data);
    w.rows = rows;
    w.cols = cols;
    w.dtype = dtype(role);
    return w;
  }

  std::vector<float> ones(int n) { return std::vector<float>(size_t(n), 1.0f); }
  std::vector<float> uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }

  LayerWeights layer(LayerKind kind, const ModelConfig& c) {
    const int H = c.n_embd;
    LayerWeights L;
    L.kind = kind;
    L.input_norm = ones(H);
    L.post_norm = ones(H);
    if (kind == LayerKind::FullAttention) {
      const int nh = c.n_head, nkv = c.n_head_kv, hd = c.head_dim;
      L.attn.q = mat(nh * hd * (c.attn_output_gate ? 2 : 1), H);
      L.attn.k = mat(nkv * hd, H);
      L.attn.v = mat(nkv * hd, H, Role::Favoured);
      L.attn.o = mat(H, nh * hd);
      L.attn.q_norm = ones(hd);
      L.attn.k_norm = ones(hd);
    } else {
      const int HK = c.lin_n_k_heads, HV = c.lin_n_v_heads, dk = c.lin_k_dim, dv = c.lin_v_dim;
      DeltaNetWeights& w = L.lin;
      w.fused = c.family == ModelFamily::Qwen3Next;
      if (w.fused) {
        w.qkvz = mat(2 * HK * dk + 2 * HV * dv, H);
        w.ba = mat(2 * HV, H, Role::Small);
      } else {
        w.qkv = mat(c.lin_conv_dim(), H);
        w.z = mat(HV * dv, H);
        w.b = mat(HV, H, Role::Small);
        w.a = mat(HV, H, Role::Small);
      }
      // Plausible gates: decay rates exp(A * softplus(.)) spread over (0, 1), taps of a smoothing filter.
      w.conv = uniform(size_t(c.lin_conv_dim()) * c.lin_conv_kernel, -0.5f, 0.5f);
      w.A = uniform(size_t(HV), 0.0f, 2.7f);
      for (float& a : w.A) a = -std::exp(a);
      w.dt_bias = uniform(size_t(HV), -1.0f, 1.0f);
      w.norm = ones(dv);
      w.out = mat(H, HV * dv, Role::Favoured);
    }
    FfnWeights& f = L.ffn;
    if (!c.is_moe) {
      f.gate = mat(c.n_ff, H);
      f.up = mat(c.n_ff, H);
      f.down = mat(H, c.n_ff, Role::Favoured);
      return L;
    }
    f.router = mat(c.n_expert, H, Role::Small);
    for (int e = 0; e < c.n_expert; ++e) {
      f.exp_gate.push_back(mat(c.n_ff_expert, H));
      f.exp_up.push_back(mat(c.n_ff_expert, H));
      f.exp_down.push_back(mat(H, c.n_ff_expert, Role::Favoured));
    }
    if (c.n_ff_shared > 0) {
      f.shared_gate = mat(c.n_ff_shared, H);
      f.shared_up = mat(c.n_ff_shared, H);
      f.shared_down = mat(H, c.n_ff_shared, Role::Favoured);
      f.shared_expert_gate = mat(1, H, Role::Small);
    }
    return L;
  }

 private:
  DType dtype(Role role) const {
    switch (type_) {
      case RandomWeightsType::BF16: return DType::BF16;
      case RandomWeightsType::F16: return DType::F16;
      case RandomWeightsType::F32: return DType::F32;
      case RandomWeightsType::Q8_0: return role == Role::Small ? DType::BF16 : DType::Q8_0;
      case RandomWeightsType::Q4_K_M:
        return role == Role::Small ? DType::BF16 : role == Role::Favoured ? DType::Q6_K : DType::Q4_K;
    }
    return DType::BF16;
  }

  Model& m_;
  RandomWeightsType type_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Model> random_model(const std::string& config_path, RandomWeightsType type, uint64_t seed) {
  struct stat st {};
  // A directory holding config.json, or the JSON file itself (configs/*.json).
  auto m = std::make_unique<Model>();
  if (stat(config_path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    m->config = load_config(config_path);
  } else {
    m->config = parse_config(read_file(config_path), config_path);
  }
  m->path = config_path;
  m->random_weights = true;
  m->random_seed = seed;
  const ModelConfig& c = m->config;
  Builder b(*m, type, seed);
  ModelWeights& w = m->weights;
  // The embedding stays a plain 16-bit table in the quantized mixes, as the row gather reads one row per token.
  w.embed = b.mat(c.n_vocab, c.n_embd, Role::Plain);
  if (type == RandomWeightsType::Q8_0 || type == RandomWeightsType::Q4_K_M) w.embed.dtype = DType::BF16;
  w.lm_head = c.tie_word_embeddings ? w.embed : b.mat(c.n_vocab, c.n_embd, Role::Favoured);
  w.final_norm = b.ones(c.n_embd);
  for (int i = 0; i < c.n_layer; ++i) w.layers.push_back(b.layer(c.layer_kinds[i], c));
  if (c.n_mtp_layer > 0) {
    w.has_mtp = true;
    w.mtp.fc = b.mat(c.n_embd, 2 * c.n_embd);
    w.mtp.norm_embed = b.ones(c.n_embd);
    w.mtp.norm_hidden = b.ones(c.n_embd);
    w.mtp.norm_out = b.ones(c.n_embd);
    w.mtp.layer = b.layer(LayerKind::FullAttention, c);
  }
  return m;
}

}  // namespace imp
