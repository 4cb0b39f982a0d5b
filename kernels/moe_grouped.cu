#include "moe_grouped.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "smem_limit.cuh"

namespace imp::kernels::moe {

namespace {

constexpr int kGroupThreads = 1024;  // GroupByExpert's one block (a power of two: expert e's owner is e mod it)
constexpr int kWarps = 8;
constexpr int kOutPerWarp = 2;                       // matrix rows per warp
constexpr int kOutPerBlock = kWarps * kOutPerWarp;
constexpr int kGroupRows = 8;                        // slots per pass over the weights

// Dynamic shared memory: E + kGroupThreads int32.
__global__ void __launch_bounds__(kGroupThreads) GroupByExpertKernel(const int32_t* __restrict__ idx, int n_slots,
                                                                     int E, int32_t* __restrict__ offsets,
                                                                     int32_t* __restrict__ sorted) {
  extern __shared__ int32_t group_smem[];
  __shared__ int32_t warp_total[32];
  int32_t* cnt = group_smem;         // (E) slots per expert, then each expert's write cursor
  int32_t* stage = cnt + E;          // (kGroupThreads) a batch of idx, read by every thread
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  for (int e = tid; e < E; e += kGroupThreads) cnt[e] = 0;
  __syncthreads();
  for (int s = tid; s < n_slots; s += kGroupThreads) {
    const int e = idx[s];
    if (e >= 0 && e < E) atomicAdd(&cnt[e], 1);
  }
  __syncthreads();

  // Exclusive scan: each thread sums a contiguous segment of experts, the block scans the segment sums.
  const int seg = (E + kGroupThreads - 1) / kGroupThreads;
  const int b0 = min(E, tid * seg), b1 = min(E, b0 + seg);
  int local = 0;
  for (int e = b0; e < b1; ++e) local += cnt[e];
  int incl = local;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int t = __shfl_up_sync(kFullMask, incl, off);
    if (lane >= off) incl += t;
  }
  if (lane == 31) warp_total[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int v = warp_total[lane];  // kGroupThreads / 32 == 32 warps
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int t = __shfl_up_sync(kFullMask, v, off);
      if (lane >= off) v += t;
    }
    warp_total[lane] = v;
  }
  __syncthreads();
  int run = incl - local + (warp > 0 ? warp_total[warp - 1] : 0);
  for (int e = b0; e < b1; ++e) {
    const int c = cnt[e];
    offsets[e] = run;
    cnt[e] = run;
    run += c;
  }
  if (tid == kGroupThreads - 1) offsets[E] = run;  // the last segment ends at the total
  __syncthreads();

  // Scatter in slot order. Expert e's cursor has one writer, thread e mod kGroupThreads, so each expert's list
  // comes out sorted without atomics.
  for (int base = 0; base < n_slots; base += kGroupThreads) {
    const int m = min(kGroupThreads, n_slots - base);
    if (tid < m) stage[tid] = idx[base + tid];
    __syncthreads();
    for (int i = 0; i < m; ++i) {
      const int e = stage[i];
      if (e >= 0 && e < E && (e & (kGroupThreads - 1)) == tid) sorted[cnt[e]++] = base + i;
    }
    __syncthreads();
  }
}
static_assert(kGroupThreads == 32 * 32, "the segment-sum scan has one warp total per lane of warp 0");

// Grid (ceil(n_out / kOutPerBlock), E). y[slot][f] = W_e[f] . x[slot / row_div] for the expert's slots; with
// SWIGLU, y = silu(W1_e[f] . x) * (W2_e[f] . x).
template <typename W, bool VEC, bool SWIGLU>
__global__ void __launch_bounds__(kWarps * 32, 1) GroupedKernel(const void* const* __restrict__ w1,
                                                             const void* const* __restrict__ w2, int n_out, int n_in,
                                                             const float* __restrict__ x, int row_div,
                                                             const int32_t* __restrict__ offsets,
                                                             const int32_t* __restrict__ sorted,
                                                             float* __restrict__ y) {
  constexpr int M = SWIGLU ? 2 : 1;
  const int e = blockIdx.y, beg = offsets[e], end = offsets[e + 1];
  const int lane = threadIdx.x & 31, f0 = blockIdx.x * kOutPerBlock + (threadIdx.x >> 5) * kOutPerWarp;
  if (beg >= end || f0 >= n_out) return;
  const int nf = min(kOutPerWarp, n_out - f0);
  const W* wr[M][kOutPerWarp];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int f = 0; f < kOutPerWarp; ++f)
      wr[m][f] = static_cast<const W*>(m == 0 ? w1[e] : w2[e]) + size_t(f0 + min(f, nf - 1)) * n_in;

  for (int g0 = beg; g0 < end; g0 += kGroupRows) {
    const int nr = min(kGroupRows, end - g0);
    const float* xr[kGroupRows];  // rows past nr repeat the last one; their sums are dropped
#pragma unroll
    for (int r = 0; r < kGroupRows; ++r) xr[r] = x + size_t(sorted[g0 + min(r, nr - 1)] / row_div) * n_in;
    float acc[M][kOutPerWarp][kGroupRows];
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int f = 0; f < kOutPerWarp; ++f)
#pragma unroll
        for (int r = 0; r < kGroupRows; ++r) acc[m][f][r] = 0.0f;
    if constexpr (VEC) {
      constexpr int V = kVec<W>;
      for (int c = lane * V; c < n_in; c += 32 * V) {
        float wv[M][kOutPerWarp][V];
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
          for (int f = 0; f < kOutPerWarp; ++f) load_vec(wr[m][f] + c, wv[m][f]);
#pragma unroll
        for (int r = 0; r < kGroupRows; ++r) {
#pragma unroll
          for (int i = 0; i < V; i += 4) {
            const float4 xv = *reinterpret_cast<const float4*>(xr[r] + c + i);
#pragma unroll
            for (int m = 0; m < M; ++m)
#pragma unroll
              for (int f = 0; f < kOutPerWarp; ++f)
                acc[m][f][r] += wv[m][f][i] * xv.x + wv[m][f][i + 1] * xv.y + wv[m][f][i + 2] * xv.z +
                                wv[m][f][i + 3] * xv.w;
          }
        }
      }
    } else {
      for (int c = lane; c < n_in; c += 32) {
        float wv[M][kOutPerWarp];
#pragma unroll
        for (int m = 0; m < M; ++m)
#pragma unroll
          for (int f = 0; f < kOutPerWarp; ++f) wv[m][f] = to_float(wr[m][f][c]);
#pragma unroll
        for (int r = 0; r < kGroupRows; ++r) {
          const float xv = xr[r][c];
#pragma unroll
          for (int m = 0; m < M; ++m)
#pragma unroll
            for (int f = 0; f < kOutPerWarp; ++f) acc[m][f][r] += wv[m][f] * xv;
        }
      }
    }
#pragma unroll
    for (int r = 0; r < kGroupRows; ++r) {
      if (r >= nr) break;  // warp-uniform
      const size_t slot = size_t(sorted[g0 + r]);
#pragma unroll
      for (int f = 0; f < kOutPerWarp; ++f) {
        if (f >= nf) break;
        float v = warp_sum(acc[0][f][r]);
        if constexpr (SWIGLU) v = siluf_(v) * warp_sum(acc[1][f][r]);
        if (lane == 0) y[slot * n_out + f0 + f] = v;
      }
    }
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

cudaError_t GroupByExpert(const int32_t* idx, int n_slots, int E, int32_t* offsets, int32_t* sorted,
                          cudaStream_t stream) {
  if (E < 1 || E > 12288) IMP_DISPATCH_FAIL("num_experts for grouping (1..12288)", E);
  if (n_slots < 0) IMP_DISPATCH_FAIL("MoE slots", n_slots);
  const size_t smem = (size_t(E) + kGroupThreads) * sizeof(int32_t);
  const cudaError_t e = allow_dynamic_smem(reinterpret_cast<const void*>(GroupByExpertKernel), smem,
                                           "MoE grouping shared memory in bytes (over the device limit)");
  if (e != cudaSuccess) return e;
  GroupByExpertKernel<<<1, kGroupThreads, smem, stream>>>(idx, n_slots, E, offsets, sorted);
  return cudaGetLastError();
}

// The pointer tables are device arrays; every expert matrix is 16-byte aligned (the host places each at a 256-byte
// boundary), so the row length alone decides whether rows are.
cudaError_t GroupedSwiGLU(const void* const* gate, const void* const* up, WType wtype, int Fe, int H, const float* x,
                          int k, const int32_t* offsets, const int32_t* sorted, int E, float* act,
                          cudaStream_t stream) {
  if (E < 1 || E > 65535) IMP_DISPATCH_FAIL("num_experts for the grouped experts (1..65535)", E);
  if (k < 1) IMP_DISPATCH_FAIL("num_experts_per_tok", k);
  if (Fe <= 0 || H <= 0) return cudaSuccess;
  const dim3 grid((Fe + kOutPerBlock - 1) / kOutPerBlock, E);
  DISPATCH_WTYPE(wtype, W, {
    if (aligned16(x) && H % kVec<W> == 0)
      GroupedKernel<W, true, true><<<grid, kWarps * 32, 0, stream>>>(gate, up, Fe, H, x, k, offsets, sorted, act);
    else
      GroupedKernel<W, false, true><<<grid, kWarps * 32, 0, stream>>>(gate, up, Fe, H, x, k, offsets, sorted, act);
  })
  return cudaGetLastError();
}

cudaError_t GroupedDown(const void* const* down, WType wtype, int H, int Fe, const float* act, const int32_t* offsets,
                        const int32_t* sorted, int E, float* out, cudaStream_t stream) {
  if (E < 1 || E > 65535) IMP_DISPATCH_FAIL("num_experts for the grouped experts (1..65535)", E);
  if (Fe <= 0 || H <= 0) return cudaSuccess;
  const dim3 grid((H + kOutPerBlock - 1) / kOutPerBlock, E);
  DISPATCH_WTYPE(wtype, W, {
    if (aligned16(act) && Fe % kVec<W> == 0)
      GroupedKernel<W, true, false><<<grid, kWarps * 32, 0, stream>>>(down, nullptr, H, Fe, act, 1, offsets, sorted, out);
    else
      GroupedKernel<W, false, false><<<grid, kWarps * 32, 0, stream>>>(down, nullptr, H, Fe, act, 1, offsets, sorted,
                                                                       out);
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::moe
