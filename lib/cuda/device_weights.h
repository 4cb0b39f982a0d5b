// The model's weights on one CUDA device: every matrix in its stored dtype (F32, F16, BF16, or GGUF's quantized
// blocks Q8_0, Q4_K, Q5_K, Q6_K, kept as they are) and every small fp32 vector, uploaded once into one device
// allocation and shared by every CUDA forward pass of that model and device (the registry holds it weakly: it is
// freed with the last forward pass that uses it).
#pragma once

#include "common.cuh"
#include "model/model.h"

#include <memory>
#include <vector>

namespace imp::cuda {

struct DMat {
  const void* data = nullptr;  // device, 256-byte aligned
  kernels::WType wtype = kernels::WType::F32;
  int rows = 0, cols = 0;      // (out, in): y = W x
  bool empty() const { return data == nullptr; }
};

struct DLayer {
  LayerKind kind = LayerKind::LinearAttention;
  const float* input_norm = nullptr;  // (H) 1 + w
  const float* post_norm = nullptr;   // (H) 1 + w
  // Gated full attention.
  DMat q, k, v, o;                    // q: (nh*2*hd, H) per head [q_h | gate_h]; k, v: (nkv*hd, H); o: (H, nh*hd)
  const float* q_norm = nullptr;      // (hd) 1 + w
  const float* k_norm = nullptr;      // (hd) 1 + w
  // Gated DeltaNet.
  bool fused = false;
  bool tiled = false;                 // value heads tiled (llama.cpp Qwen3.5 GGUF): value head j reads key head j % HK
  DMat qkv, z, b, a;                  // split (Qwen3.5): (conv_dim, H), (HV*dv, H), (HV, H), (HV, H)
  DMat qkvz, ba;                      // fused (Qwen3-Next): (2*HK*dk + 2*HV*dv, H), (2*HV, H)
  DMat out;                           // (H, HV*dv)
  const float* conv = nullptr;        // (conv_dim, K)
  const float* A = nullptr;           // (HV) -exp(A_log)
  const float* dt_bias = nullptr;     // (HV)
  const float* norm = nullptr;        // (dv)
  // FFN: dense, or MoE with per-expert device pointer tables.
  DMat gate, up, down;                // (F, H), (F, H), (H, F)
  DMat router;                        // (E, H)
  const void* const* exp_gate = nullptr;  // (E) device pointers to (Fe, H)
  const void* const* exp_up = nullptr;    // (E) device pointers to (Fe, H)
  const void* const* exp_down = nullptr;  // (E) device pointers to (H, Fe)
  kernels::WType exp_wtype = kernels::WType::F32;       // gate and up
  kernels::WType exp_down_wtype = kernels::WType::F32;  // down
  DMat shared_gate, shared_up, shared_down;  // (Fs, H), (Fs, H), (H, Fs)
  DMat shared_expert_gate;                   // (1, H)
};

struct DeviceWeights {
  ~DeviceWeights();
  DeviceWeights() = default;
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;

  int device = 0;
  void* arena = nullptr;         // the one device allocation everything below points into
  size_t arena_bytes = 0;
  DMat embed;                    // (V, H)
  DMat lm_head;                  // (V, H); the embedding's device copy when tied
  const float* final_norm = nullptr;  // (H)
  const float* inv_freq = nullptr;    // (n_rot / 2) RoPE inverse frequencies, as the CPU reference computes them
  std::vector<DLayer> layers;    // (L)
  bool has_mtp = false;
  DMat mtp_fc;                   // (H, 2H)
  const float* mtp_norm_embed = nullptr;   // (H)
  const float* mtp_norm_hidden = nullptr;  // (H)
  const float* mtp_norm_out = nullptr;     // (H)
  DLayer mtp_layer;
  int max_cols = 0;              // the widest matrix input, for the cuBLAS conversion scratch
  size_t max_quant_elems = 0;    // rows * cols of the largest quantized matrix (0: none), for the prefill
                                 // dequantisation scratch (CudaForward::dequant_)
};

// The device copy of model's weights on `device`, uploaded on first use. Throws imp::Error (IMP_ERR_BACKEND on a
// CUDA failure, IMP_ERR_UNSUPPORTED for a weight dtype the kernels do not read).
std::shared_ptr<const DeviceWeights> device_weights(const Model& model, int device);

}  // namespace imp::cuda
