// Attention family, prefill: the same causal, GQA, sigmoid-gated attention as attention::Attention (attention.cuh:
// same AttentionParams, same layouts, row t at position pos0 + t sees keys 0 .. pos0+t), tiled for many query rows
// in the flash-attention-2 way so that each K/V tile is read once per block instead of once per query row.
//
//   q:        (T, nh, hd)          gate: row t, head h at gate + (t*nh + h) * gate_head_stride (hd values)
//   k_cache, v_cache: (n_ctx, nkv, hd) fp32, keys 0 .. pos0+T-1 written
//   out:      (T, nh * hd)         softmax(q k^T * scale) V * sigmoid(gate)
//
// One block of 8 warps per (tile of 32 query rows, group of G heads). The heads of a GQA group read the same KV
// head, so a block packs G = nh/nkv heads (when G divides 32) of 32/G consecutive tokens: its 32 rows are
// (token t0 + r/G, head h0 + r%G) and every K/V tile staged in shared memory serves all of them. Keys go in tiles
// of 32 (one per lane for q.k); each warp keeps 4 rows with an online softmax and accumulates V with each lane
// owning hd/32 output dims. fp32 throughout. The split workspace fields of AttentionParams are not used. head_dim
// 16, 32, 64, 128 or 256 (DISPATCH_HEAD_DIM); shared memory about 12 * 32 * hd bytes (98 KiB at hd 256).
#ifndef IMP_KERNELS_ATTENTION_PREFILL_CUH_
#define IMP_KERNELS_ATTENTION_PREFILL_CUH_

#include "attention.cuh"

namespace imp::kernels::attention {

cudaError_t Prefill(const AttentionParams& p, cudaStream_t stream);

}  // namespace imp::kernels::attention

#endif  // IMP_KERNELS_ATTENTION_PREFILL_CUH_
