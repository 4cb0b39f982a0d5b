// RoPE family: the gated attention layer's q/k preparation, fused with the KV-cache write.
//
//   qg:  (T, nh, 2*hd)  q_proj output, per head [q_h | gate_h]; gate_h is left in place for the attention
//   k,v: (T, nkv, hd)   k_proj, v_proj outputs
//   q:   (T, nh, hd)    out: RMSNorm(q_h; q_norm) then RoPE at position pos0 + t
//   k_cache, v_cache: (n_ctx, nkv, hd)  out at rows pos0 .. pos0+T-1: RMSNorm(k; k_norm) + RoPE, and v as is
//
// RoPE rotates the first n_rot dims with NeoX pairing (i, i + n_rot/2): angle = float(pos) * inv_freq[i], with
// inv_freq (n_rot/2) computed on the host exactly as the CPU reference does. Grid (T, nh + nkv), one block per
// head vector. hd <= 512. With pos0_dev set, row t is at pos0 + *pos0_dev + t, read from device memory at run
// time (a CUDA graph replays one launch at every position).
#ifndef IMP_KERNELS_ROPE_CUH_
#define IMP_KERNELS_ROPE_CUH_

#include "common.cuh"

namespace imp::kernels::rope {

struct QkNormRopeParams {
  const float* qg = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  const float* q_norm = nullptr;    // (hd) 1 + w
  const float* k_norm = nullptr;    // (hd) 1 + w
  const float* inv_freq = nullptr;  // (n_rot / 2)
  float* q = nullptr;
  float* k_cache = nullptr;
  float* v_cache = nullptr;
  int T = 0, pos0 = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0;
  float eps = 1e-6f;
  const int* pos0_dev = nullptr;  // if set, added to pos0 at run time
};

cudaError_t QkNormRopeKvWrite(const QkNormRopeParams& p, cudaStream_t stream);

}  // namespace imp::kernels::rope

#endif  // IMP_KERNELS_ROPE_CUH_
