#include "attention_prefill.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "smem_limit.cuh"

namespace imp::kernels::attention {

namespace {

constexpr int kRows = 32;  // query rows (token, head) per block
constexpr int kKeys = 32;  // keys per K/V tile: one per lane for the scores
constexpr int kWarps = 8;
constexpr int kRowsPerWarp = kRows / kWarps;

// Shared memory: Q (kRows, HD) | K (kKeys, HD + 4) | V (kKeys, HD). K rows are padded by 4 floats so that the
// float4 reads of 8 lanes (8 different key rows) fall in 8 different groups of 4 banks.
template <int HD>
constexpr size_t kSmemFloats = size_t(kRows) * HD + size_t(kKeys) * (HD + 4) + size_t(kKeys) * HD;

// Grid (ceil(T / (kRows / group)), nh / group), kWarps warps. Row r of the block is token t0 + r / group, head
// h0 + r % group; the group's heads share one KV head. Warp w owns rows 4w .. 4w+3.
template <int HD>
__global__ void __launch_bounds__(kWarps * 32) PrefillKernel(AttentionParams p, int group) {
  constexpr int kPer = (HD + 31) / 32;  // output dims per lane: d = lane + 32 * i
  constexpr int KS = HD + 4;
  extern __shared__ __align__(16) float smem[];
  float* Qs = smem;
  float* Ks = Qs + kRows * HD;
  float* Vs = Ks + kKeys * KS;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nh = p.n_head, tokens = kRows / group;
  const int t0 = blockIdx.x * tokens, h0 = blockIdx.y * group, kvh = h0 / (nh / p.n_head_kv);
  const int t_end = min(t0 + tokens, p.T);
  const int n_keys = p.pos0 + t_end;  // keys the block's last token sees

  for (int e = threadIdx.x; e < kRows * HD; e += blockDim.x) {
    const int r = e / HD, t = t0 + r / group, h = h0 + r % group;
    Qs[e] = t < p.T ? p.q[(size_t(t) * nh + h) * HD + e % HD] : 0.0f;
  }
  int last_key[kRowsPerWarp];  // the row's last visible key; -1 for a row past T (it sees nothing)
  float m[kRowsPerWarp], l[kRowsPerWarp], o[kRowsPerWarp][kPer];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int t = t0 + (warp * kRowsPerWarp + r) / group;
    last_key[r] = t < p.T ? p.pos0 + t : -1;
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) o[r][i] = 0.0f;
  }
  const size_t row_stride = size_t(p.n_head_kv) * HD;
  const float* kbase = p.k_cache + size_t(kvh) * HD;
  const float* vbase = p.v_cache + size_t(kvh) * HD;

  for (int k0 = 0; k0 < n_keys; k0 += kKeys) {
    __syncthreads();  // the previous tile is no longer read (and Q is written, the first time)
    for (int e = threadIdx.x; e < kKeys * HD / 4; e += blockDim.x) {
      const int jj = e / (HD / 4), dd = e % (HD / 4) * 4, key = k0 + jj;
      float4 kv = make_float4(0.0f, 0.0f, 0.0f, 0.0f), vv = kv;
      if (key < n_keys) {
        kv = *reinterpret_cast<const float4*>(kbase + size_t(key) * row_stride + dd);
        vv = *reinterpret_cast<const float4*>(vbase + size_t(key) * row_stride + dd);
      }
      *reinterpret_cast<float4*>(Ks + jj * KS + dd) = kv;
      *reinterpret_cast<float4*>(Vs + jj * HD + dd) = vv;
    }
    __syncthreads();

    // Scores of key k0 + lane against the warp's rows.
    float s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.0f;
    const float* kr = Ks + lane * KS;
#pragma unroll 4
    for (int dd = 0; dd < HD; dd += 4) {
      const float4 kv = *reinterpret_cast<const float4*>(kr + dd);
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(Qs + (warp * kRowsPerWarp + r) * HD + dd);
        s[r] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
      }
    }
    // Online softmax. A token's row sees key 0, so its max is finite from the first tile on; a row past T stays
    // at m = -inf, l = 0 (the guard keeps exp(-inf - -inf) out).
    const int key = k0 + lane;
    float pr[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const float sc = key <= last_key[r] ? s[r] * p.scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(sc));
      float corr = 1.0f;
      pr[r] = 0.0f;
      if (m_new != -INFINITY) {
        corr = expf(m[r] - m_new);  // 0 on the first tile (m = -inf)
        pr[r] = expf(sc - m_new);   // 0 for a masked key
      }
      l[r] = l[r] * corr + warp_sum(pr[r]);
#pragma unroll
      for (int i = 0; i < kPer; ++i) o[r][i] *= corr;
      m[r] = m_new;
    }
    // o += P V over the tile's keys.
    const int n_here = min(kKeys, n_keys - k0);
    for (int jj = 0; jj < n_here; ++jj) {
      float vv[kPer];
#pragma unroll
      for (int i = 0; i < kPer; ++i) {
        const int d = lane + 32 * i;
        vv[i] = d < HD ? Vs[jj * HD + d] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float w = __shfl_sync(kFullMask, pr[r], jj);
#pragma unroll
        for (int i = 0; i < kPer; ++i) o[r][i] += w * vv[i];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r, t = t0 + row / group, h = h0 + row % group;
    if (t >= p.T) continue;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      if (d >= HD) continue;
      const float g = p.gate[(size_t(t) * nh + h) * p.gate_head_stride + d];
      p.out[(size_t(t) * nh + h) * HD + d] = o[r][i] / l[r] * sigmoidf_(g);
    }
  }
}

bool aligned16(const void* ptr) { return (reinterpret_cast<uintptr_t>(ptr) & 15) == 0; }

}  // namespace

cudaError_t Prefill(const AttentionParams& p, cudaStream_t stream) {
  if (p.T <= 0) return cudaSuccess;
  if (p.n_head_kv <= 0 || p.n_head % p.n_head_kv) IMP_DISPATCH_FAIL("GQA grouping (nh % nkv != 0), nkv", p.n_head_kv);
  if (!aligned16(p.k_cache) || !aligned16(p.v_cache))
    IMP_DISPATCH_FAIL("KV cache alignment for prefill attention (bytes mod 16)",
                      reinterpret_cast<uintptr_t>(aligned16(p.k_cache) ? p.v_cache : p.k_cache) & 15);
  // Pack a whole GQA group per block when it divides the tile; otherwise one head per block.
  const int ratio = p.n_head / p.n_head_kv, group = kRows % ratio == 0 ? ratio : 1, tokens = kRows / group;
  DISPATCH_HEAD_DIM(p.head_dim, HD, {
    const size_t smem = kSmemFloats<HD> * sizeof(float);
    const cudaError_t e = allow_dynamic_smem(reinterpret_cast<const void*>(PrefillKernel<HD>), smem,
                                             "prefill attention shared memory in bytes (over the device limit)");
    if (e != cudaSuccess) return e;
    PrefillKernel<HD><<<dim3((p.T + tokens - 1) / tokens, p.n_head / group), kWarps * 32, smem, stream>>>(p, group);
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::attention
