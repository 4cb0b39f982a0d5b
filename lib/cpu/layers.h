// The three mixers and the FFN of a hybrid decoder layer on the CPU, each over T rows at positions
// pos0 .. pos0+T-1. Inputs are already normed by the layer's input/post norm; outputs are the residual branch.
#pragma once

#include "cpu/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

#include <vector>

namespace imp::cpu {

// Full-attention KV cache of one layer: (n_ctx, nkv, hd) keys after q/k-norm and RoPE, and values.
struct KvCache {
  std::vector<float> k, v;
};

// Gated DeltaNet state of one layer: S per value head (HV, dk, dv) fp32, and the conv window holding the last
// K-1 pre-conv inputs (K-1, conv_dim), oldest first.
struct DeltaNetState {
  std::vector<float> S;
  std::vector<float> conv;
};

// Gated full attention (q/k norm, partial NeoX RoPE, GQA, causal softmax, sigmoid output gate). Writes the
// rows' keys and values into the cache at their positions, then attends over positions 0..pos.
void full_attention(ThreadPool& pool, const ModelConfig& c, const FullAttentionWeights& w, const float* x, int T,
                    int pos0, KvCache& cache, float* out);

// Gated DeltaNet. If row_states is non-null it receives the state after each row: row_states[t] for t in 0..T-1.
void gated_deltanet(ThreadPool& pool, const ModelConfig& c, const DeltaNetWeights& w, const float* x, int T,
                    DeltaNetState& state, float* out, std::vector<DeltaNetState>* row_states);

// Dense SwiGLU or MoE (softmax top-k, optional renormalisation, sigmoid-gated shared expert).
void ffn(ThreadPool& pool, const ModelConfig& c, const FfnWeights& w, const float* x, int T, float* out);

// RoPE on the first n_rot dims of one head vector, NeoX pairing (i, i + n_rot/2), as transformers computes it
// (fp32 inverse frequencies and angles).
void rope_neox(float* v, int n_rot, int pos, float theta);

}  // namespace imp::cpu
