// Uploading a model's weights to a CUDA device: plan every tensor's place in one arena (256-byte aligned, a host
// tensor seen twice, as a tied lm_head, placed once), allocate it, copy, then resolve the device pointers.
#include "cuda/device_weights.h"

#include "cuda/check.h"

#include "quant_gemv.cuh"
#include "random_fill.cuh"

#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <type_traits>

namespace imp::cuda {

DeviceWeights::~DeviceWeights() {
  if (arena) {
    cudaSetDevice(device);
    cudaFree(arena);
  }
}

namespace {

kernels::WType wtype_of(DType d, const char* what) {
  switch (d) {
    case DType::F32: return kernels::WType::F32;
    case DType::F16: return kernels::WType::F16;
    case DType::BF16: return kernels::WType::BF16;
    case DType::Q8_0: return kernels::WType::Q8_0;
    case DType::Q4_K: return kernels::WType::Q4_K;
    case DType::Q5_K: return kernels::WType::Q5_K;
    case DType::Q6_K: return kernels::WType::Q6_K;
    default:
      fail(IMP_ERR_UNSUPPORTED, "the CUDA backend reads F32, F16, BF16, Q8_0, Q4_K, Q5_K and Q6_K weights; ", what, " is ",
           dtype_name(d));
  }
}

class Uploader {
 public:
  // Reserves bytes for host data (copied later) and returns the offset; the same host range maps to one place.
  size_t place(const void* host, size_t bytes) {
    auto key = std::make_pair(host, bytes);
    auto it = seen_.find(key);
    if (it != seen_.end()) return it->second;
    const size_t off = reserve(bytes);
    copies_.push_back({host, bytes, off});
    if (host) seen_[key] = off;
    return off;
  }
  size_t reserve(size_t bytes) {
    const size_t off = size_;
    size_ += (bytes + 255) / 256 * 256;
    return off;
  }
  // Registers a pointer to set to arena + off once the arena exists.
  template <typename T>
  void fix(T*& ptr, size_t off) {
    fixups_.push_back([&ptr, off](char* base) { ptr = reinterpret_cast<T*>(base + off); });
  }
  void mat(DMat& d, const Mat& m, const char* what) {
    if (model && model->is_placeholder(m.data) && !random_.count(m.data))
      random_[m.data] = RandomMat{m.dtype, size_t(m.rows) * m.cols, m.cols, random_.size()};
    d.wtype = wtype_of(m.dtype, what);
    d.rows = m.rows;
    d.cols = m.cols;
    max_cols = std::max(max_cols, m.cols);
    // Sized per row: a quantized row is whole blocks (dtype_size is 0 for the block types).
    if (m.cols % int(dtype_block_size(m.dtype)) != 0)
      fail(IMP_ERR_TENSOR_SHAPE, what, " has ", m.cols, " columns, not a whole number of ", dtype_name(m.dtype), " blocks");
    if (kernels::wtype_is_quantized(d.wtype)) max_quant_elems = std::max(max_quant_elems, size_t(m.rows) * m.cols);
    const size_t off = place(m.data, size_t(m.rows) * row_bytes(m.dtype, size_t(m.cols)));
    fixups_.push_back([&d, off](char* base) { d.data = base + off; });
  }
  void vec(const float*& d, const std::vector<float>& v) { fix(d, place(v.data(), v.size() * sizeof(float))); }
  // A device table of E pointers to the expert matrices.
  void table(const void* const*& d, std::vector<DMat>& mats) {
    const size_t off = reserve(mats.size() * sizeof(void*));
    tables_.push_back({off, &mats});
    fix(d, off);
  }

  void upload(DeviceWeights& w) {
    w.arena_bytes = std::max<size_t>(size_, 256);
    check(cudaMalloc(&w.arena, w.arena_bytes), "cudaMalloc of the weights");
    char* base = static_cast<char*>(w.arena);
    for (const auto& c : copies_) {
      if (!c.host || !c.bytes) continue;
      auto r = random_.find(c.host);
      if (r != random_.end()) {
        fill_random(base + c.off, r->second);
        continue;
      }
      check(cudaMemcpy(base + c.off, c.host, c.bytes, cudaMemcpyHostToDevice), "uploading weights");
    }
    if (!random_.empty()) check(cudaDeviceSynchronize(), "filling random weights");
    for (auto& f : fixups_) f(base);
    for (const auto& t : tables_) {
      std::vector<const void*> ptrs;
      for (const DMat& m : *t.mats) ptrs.push_back(m.data);
      check(cudaMemcpy(base + t.off, ptrs.data(), ptrs.size() * sizeof(void*), cudaMemcpyHostToDevice),
            "uploading the expert tables");
    }
  }

  int max_cols = 0;
  size_t max_quant_elems = 0;
  const Model* model = nullptr;  // for its random-weight placeholders

 private:
  // A placeholder matrix of a random-weight model: filled on the device instead of copied.
  struct RandomMat {
    DType dtype;
    size_t n;      // elements
    int cols;
    size_t index;  // order of first appearance: the matrix's own seed
  };
  void fill_random(void* dst, const RandomMat& r) const {
    // Uniform in +-1/sqrt(cols): each output of y = W x keeps about the scale of x, so a deep random stack
    // stays finite and the routers and gates see varied inputs.
    const float scale = 1.0f / std::sqrt(float(std::max(r.cols, 1)));
    const uint64_t seed = model->random_seed * 0x9E3779B97F4A7C15ull + r.index;
    const kernels::WType t = wtype_of(r.dtype, "a random matrix");
    if (kernels::wtype_is_quantized(t))
      check(kernels::quant_gemv::FillRandomBlocks(t, dst, r.n / size_t(r.cols), r.cols, seed, scale, nullptr),
            "filling random quantized weights");
    else
      check(kernels::random_fill::FillUniform(dst, t, r.n, seed, scale, nullptr), "filling random weights");
  }
  std::map<const void*, RandomMat> random_;
  struct Copy {
    const void* host;
    size_t bytes, off;
  };
  struct Table {
    size_t off;
    std::vector<DMat>* mats;
  };
  size_t size_ = 0;
  std::map<std::pair<const void*, size_t>, size_t> seen_;
  std::vector<Copy> copies_;
  std::vector<std::function<void(char*)>> fixups_;
  std::vector<Table> tables_;
};

// llama.cpp's Qwen3.5 GGUFs may store the value heads tiled (DeltaNetWeights::v_heads_tiled, where the loader
// has it); the kernels index value head j -> key head j / r only, so such a layer is refused rather than
// computed wrong. Detected by trait so this file builds with and without that field.
template <typename T, typename = void>
struct HasTiledHeads : std::false_type {};
template <typename T>
struct HasTiledHeads<T, std::void_t<decltype(T::v_heads_tiled)>> : std::true_type {};
template <typename T>
bool tiled_heads(const T& w) {
  if constexpr (HasTiledHeads<T>::value) return w.v_heads_tiled;
  else return false;
}

struct ExpertMats {
  std::vector<DMat> gate, up, down;
};

void plan_layer(Uploader& u, const ModelConfig& c, const LayerWeights& L, DLayer& d, ExpertMats& ex) {
  d.kind = L.kind;
  u.vec(d.input_norm, L.input_norm);
  u.vec(d.post_norm, L.post_norm);
  if (L.kind == LayerKind::FullAttention) {
    u.mat(d.q, L.attn.q, "q_proj");
    u.mat(d.k, L.attn.k, "k_proj");
    u.mat(d.v, L.attn.v, "v_proj");
    u.mat(d.o, L.attn.o, "o_proj");
    u.vec(d.q_norm, L.attn.q_norm);
    u.vec(d.k_norm, L.attn.k_norm);
  } else {
    const DeltaNetWeights& w = L.lin;
    d.tiled = tiled_heads(w);
    d.fused = w.fused;
    if (w.fused) {
      u.mat(d.qkvz, w.qkvz, "in_proj_qkvz");
      u.mat(d.ba, w.ba, "in_proj_ba");
    } else {
      u.mat(d.qkv, w.qkv, "in_proj_qkv");
      u.mat(d.z, w.z, "in_proj_z");
      u.mat(d.b, w.b, "in_proj_b");
      u.mat(d.a, w.a, "in_proj_a");
    }
    u.mat(d.out, w.out, "out_proj");
    u.vec(d.conv, w.conv);
    u.vec(d.A, w.A);
    u.vec(d.dt_bias, w.dt_bias);
    u.vec(d.norm, w.norm);
  }
  const FfnWeights& f = L.ffn;
  if (!c.is_moe) {
    u.mat(d.gate, f.gate, "mlp.gate_proj");
    u.mat(d.up, f.up, "mlp.up_proj");
    u.mat(d.down, f.down, "mlp.down_proj");
    return;
  }
  u.mat(d.router, f.router, "the MoE router");
  const size_t E = f.exp_gate.size();
  ex.gate.resize(E);
  ex.up.resize(E);
  ex.down.resize(E);
  for (size_t e = 0; e < E; ++e) {
    u.mat(ex.gate[e], f.exp_gate[e], "an expert gate_proj");
    u.mat(ex.up[e], f.exp_up[e], "an expert up_proj");
    u.mat(ex.down[e], f.exp_down[e], "an expert down_proj");
    // One dtype for all gate/up matrices and one for all down matrices (a Q4_K_M mix keeps down in Q6_K).
    if (ex.gate[e].wtype != ex.gate[0].wtype || ex.up[e].wtype != ex.gate[0].wtype || ex.down[e].wtype != ex.down[0].wtype)
      fail(IMP_ERR_UNSUPPORTED, "the CUDA backend needs the routed experts' gate/up matrices in one dtype and their down "
                                "matrices in one dtype");
  }
  if (E) d.exp_wtype = ex.gate[0].wtype, d.exp_down_wtype = ex.down[0].wtype;
  u.table(d.exp_gate, ex.gate);
  u.table(d.exp_up, ex.up);
  u.table(d.exp_down, ex.down);
  if (!f.shared_gate.empty()) {
    u.mat(d.shared_gate, f.shared_gate, "shared_expert.gate_proj");
    u.mat(d.shared_up, f.shared_up, "shared_expert.up_proj");
    u.mat(d.shared_down, f.shared_down, "shared_expert.down_proj");
    u.mat(d.shared_expert_gate, f.shared_expert_gate, "shared_expert_gate");
  }
}

std::shared_ptr<const DeviceWeights> upload(const Model& model, int device) {
  const ModelConfig& c = model.config;
  const ModelWeights& w = model.weights;
  check(cudaSetDevice(device), "cudaSetDevice");
  auto dw = std::make_shared<DeviceWeights>();
  dw->device = device;
  dw->layers.resize(w.layers.size());
  std::vector<ExpertMats> experts(w.layers.size() + 1);
  Uploader u;
  u.model = &model;
  u.mat(dw->embed, w.embed, "embed_tokens");
  u.mat(dw->lm_head, w.lm_head, "lm_head");
  u.vec(dw->final_norm, w.final_norm);
  // RoPE inverse frequencies exactly as cpu::rope_neox computes them (double pow, then fp32).
  std::vector<float> inv_freq(std::max(1, c.n_rot / 2));
  for (int i = 0; i < c.n_rot / 2; ++i)
    inv_freq[i] = float(1.0 / std::pow(double(c.rope_theta), double(2 * i) / double(c.n_rot)));
  u.vec(dw->inv_freq, inv_freq);
  for (size_t i = 0; i < w.layers.size(); ++i) plan_layer(u, c, w.layers[i], dw->layers[i], experts[i]);
  dw->has_mtp = w.has_mtp;
  if (w.has_mtp) {
    u.mat(dw->mtp_fc, w.mtp.fc, "mtp.fc");
    u.vec(dw->mtp_norm_embed, w.mtp.norm_embed);
    u.vec(dw->mtp_norm_hidden, w.mtp.norm_hidden);
    u.vec(dw->mtp_norm_out, w.mtp.norm_out);
    plan_layer(u, c, w.mtp.layer, dw->mtp_layer, experts.back());
  }
  dw->max_cols = u.max_cols;
  dw->max_quant_elems = u.max_quant_elems;
  u.upload(*dw);  // inv_freq's host copy is still alive here
  return dw;
}

}  // namespace

std::shared_ptr<const DeviceWeights> device_weights(const Model& model, int device) {
  static std::mutex mu;
  static std::map<std::pair<const Model*, int>, std::weak_ptr<const DeviceWeights>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{&model, device}];
  if (auto sp = slot.lock()) return sp;
  auto sp = upload(model, device);
  slot = sp;
  return sp;
}

}  // namespace imp::cuda
