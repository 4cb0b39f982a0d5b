// Attention family: causal softmax attention over the KV cache with GQA and the gated layer's sigmoid output
// gate, for T query rows at positions pos0 .. pos0+T-1 (row t sees keys 0 .. pos0+t).
//
//   q:        (T, nh, hd)     normed and rotated (rope.cuh)
//   gate:     gate_h (hd) of row t, head h at gate + (t*nh + h) * gate_head_stride (q_proj's [q_h | gate_h])
//   k_cache, v_cache: (n_ctx, nkv, hd); head h reads kv head h / (nh / nkv)
//   out:      (T, nh * hd)    softmax(q k^T / sqrt(hd)) V * sigmoid(gate)
//
// Split-K flash decoding: grid (n_splits, nh, T), 4 warps per block. Each warp takes 32 keys at a time, one key
// per lane (the lane computes the whole q.k dot), keeps an online softmax, and accumulates V with each lane
// owning hd/32 output dims; the four warps merge in shared memory. With one split the block writes the gated
// output; with several it writes (max, sum, unnormalised o) partials that a combine kernel merges.
// T <= 16 (decode, MTP, verify) splits the keys at fixed multiples of split_keys, so a row's result does not
// depend on T or on the other rows of the batch (a verify row equals the same row decoded alone, bit for bit,
// which greedy MTP parity relies on). Larger T uses one split per row: correct, but K/V are re-read per query
// row, so the CUDA backend sends prefill batches (T > 16) to attention_prefill.cuh's tiled kernel instead.
// CUDA graphs (lib/cuda/cuda_graphs.h) replay one launch at every position, so with pos0_dev set (split-K path
// only) the position comes from device memory at run time: the grid then covers every split that n_ctx keys can
// need, the splits past the batch's keys leave neutral partials, and the combine reads only the splits that hold
// keys (finishing a lone one exactly as the one-split kernel does), so the output is bit-identical to that of a
// launch with the same position on the host.
#ifndef IMP_KERNELS_ATTENTION_CUH_
#define IMP_KERNELS_ATTENTION_CUH_

#include "common.cuh"

#include <cstddef>

namespace imp::kernels::attention {

struct AttentionParams {
  const float* q = nullptr;        // (T, nh, hd)
  const float* gate = nullptr;     // gate of (t, h): gate + (t * nh + h) * gate_head_stride, hd values
  int gate_head_stride = 0;        // 2 * hd when gate points into q_proj's [q_h | gate_h] output (+hd)
  const float* k_cache = nullptr;  // (n_ctx, nkv, hd)
  const float* v_cache = nullptr;
  float* out = nullptr;            // (T, nh * hd)
  int T = 0, pos0 = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 0.0f;              // 1 / sqrt(hd), from the host
  const int* pos0_dev = nullptr;   // if set, row 0 is at pos0 + *pos0_dev (read at run time); split-K path only
  int n_ctx = 0;                   // with pos0_dev: rows the cache holds, which bounds the keys and sizes the grid
  // Split-K workspace for T <= kMaxSplitRows: (kMaxSplitRows, nh, max_splits) partials.
  float* work_o = nullptr;         // (kMaxSplitRows * nh * max_splits, hd)
  float* work_ml = nullptr;        // (kMaxSplitRows * nh * max_splits, 2)
  int max_splits = 1;
  int split_keys = 128;            // keys per split, a multiple of 32; split_keys * max_splits >= n_ctx
};

constexpr int kMaxSplitRows = 16;

// Floats each split-K workspace array needs.
inline size_t WorkspaceOFloats(int n_head, int head_dim, int max_splits) {
  return size_t(kMaxSplitRows) * n_head * max_splits * head_dim;
}
inline size_t WorkspaceMlFloats(int n_head, int max_splits) { return size_t(kMaxSplitRows) * n_head * max_splits * 2; }

cudaError_t Attention(const AttentionParams& p, cudaStream_t stream);

}  // namespace imp::kernels::attention

#endif  // IMP_KERNELS_ATTENTION_CUH_
