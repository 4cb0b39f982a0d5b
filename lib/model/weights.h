// The weights of a hybrid model as typed views into the memory-mapped files (stored dtype, row-major), plus
// the few small vectors the forward pass wants in fp32 (norm scales with the zero-centred +1 folded in, conv
// taps, A = -exp(A_log), dt_bias). Shapes are given as (rows, cols); a projection computes y = W x.
#pragma once

#include "model/config.h"
#include "model/safetensors.h"

#include <string>
#include <vector>

namespace imp {

struct Mat {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int rows = 0, cols = 0;  // (out, in)
  bool empty() const { return data == nullptr; }
  Mat row_block(int first_row, int n_rows) const;  // rows [first_row, first_row + n_rows)
};

struct FullAttentionWeights {
  Mat q;                      // (nh*2*hd, H): per head [q_h (hd) | gate_h (hd)]
  Mat k, v;                   // (nkv*hd, H)
  Mat o;                      // (H, nh*hd)
  std::vector<float> q_norm;  // (hd) scale 1 + w
  std::vector<float> k_norm;  // (hd) scale 1 + w
};

struct DeltaNetWeights {
  // Qwen3.5 stores split projections; Qwen3-Next fuses them grouped per key head g as
  // qkvz: [q_g (dk), k_g (dk), v_g (r*dv), z_g (r*dv)] and ba: [b_g (r), a_g (r)], r = HV/HK.
  bool fused = false;
  Mat qkv;   // (2*HK*dk + HV*dv, H)    split: [q_all | k_all | v_all]
  Mat z;     // (HV*dv, H)              split
  Mat b, a;  // (HV, H)                 split
  Mat qkvz;  // (2*HK*dk + 2*HV*dv, H)  fused
  Mat ba;    // (2*HV, H)               fused
  std::vector<float> conv;     // (conv_dim, K) depthwise taps; tap K-1 multiplies the newest input
  std::vector<float> A;        // (HV) -exp(A_log)
  std::vector<float> dt_bias;  // (HV)
  std::vector<float> norm;     // (dv) gated RMSNorm weight, used as stored (not zero-centred)
  Mat out;                     // (H, HV*dv)
  // Value-head order. false (Hugging Face): value head j reads key head j / (HV/HK). true (llama.cpp's Qwen3.5
  // GGUFs, which reorder value heads "grouped -> tiled" for ggml's broadcast): value head j reads key head j % HK.
  // Every per-value-head tensor (v rows, z, a, b, A, dt_bias, conv v channels, out_proj columns) is stored in the
  // same order, so the layer computes the same function with this one change of indexing.
  bool v_heads_tiled = false;
};

struct FfnWeights {
  // Dense SwiGLU.
  Mat gate, up;  // (F, H)
  Mat down;      // (H, F)
  // MoE: router, routed experts (views into per-expert or fused tensors), sigmoid-gated shared expert.
  Mat router;                          // (E, H)
  std::vector<Mat> exp_gate, exp_up;   // E x (Fe, H)
  std::vector<Mat> exp_down;           // E x (H, Fe)
  Mat shared_gate, shared_up;          // (Fs, H)
  Mat shared_down;                     // (H, Fs)
  Mat shared_expert_gate;              // (1, H)
};

struct LayerWeights {
  LayerKind kind = LayerKind::LinearAttention;
  std::vector<float> input_norm;  // (H) scale 1 + w
  std::vector<float> post_norm;   // (H) scale 1 + w
  FullAttentionWeights attn;      // kind == FullAttention
  DeltaNetWeights lin;            // kind == LinearAttention
  FfnWeights ffn;
};

struct MtpWeights {
  Mat fc;                           // (H, 2H) on [Norm(embed) | Norm(hidden)]
  std::vector<float> norm_embed;    // (H) pre_fc_norm_embedding, 1 + w
  std::vector<float> norm_hidden;   // (H) pre_fc_norm_hidden, 1 + w
  std::vector<float> norm_out;      // (H) mtp.norm, 1 + w
  LayerWeights layer;               // one full-attention decoder layer
};

struct ModelWeights {
  Mat embed;                        // (V, H)
  Mat lm_head;                      // (V, H); the embedding when tied
  std::vector<float> final_norm;    // (H) 1 + w
  std::vector<LayerWeights> layers; // (L)
  bool has_mtp = false;
  MtpWeights mtp;
  // Weight bytes the loader had to rearrange (e.g. rows of a fused GGUF tensor split apart); Mats may point
  // into these buffers, whose heap storage stays put when ModelWeights is moved.
  std::vector<std::vector<unsigned char>> owned;
};

// Binds every tensor the config requires, checking names, dtypes and shapes. Throws IMP_ERR_MISSING_TENSOR,
// IMP_ERR_TENSOR_SHAPE, IMP_ERR_TENSOR_DTYPE.
ModelWeights bind_weights(const ModelConfig& config, const SafeTensors& st);

// Converts n stored elements starting at element `offset` of a matrix's data to fp32.
void to_f32(const void* data, DType dtype, size_t offset, size_t n, float* out);

}  // namespace imp
