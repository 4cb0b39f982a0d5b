#include "moe.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "quant_gemv.cuh"

namespace imp::kernels::moe {

namespace {

constexpr int kWarps = 8;
constexpr int kTopKThreads = 256;

// Largest (value, lower index) over the block; every thread gets it.
__device__ void block_argmax(float& v, int& i) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, v, o);
    const int oi = __shfl_xor_sync(kFullMask, i, o);
    if (ov > v || (ov == v && oi < i)) v = ov, i = oi;
  }
  __syncthreads();
  if (lane == 0) sv[warp] = v, si[warp] = i;
  __syncthreads();
  v = sv[0];
  i = si[0];
  for (int w = 1; w < n_warps; ++w)
    if (sv[w] > v || (sv[w] == v && si[w] < i)) v = sv[w], i = si[w];
}

// Dynamic shared memory: E floats.
__global__ void TopKKernel(const float* __restrict__ logits, int E, int k, bool norm_topk, int32_t* __restrict__ idx,
                           float* __restrict__ weight) {
  extern __shared__ float p[];
  const float* row = logits + size_t(blockIdx.x) * E;
  float mx = -INFINITY;
  for (int e = threadIdx.x; e < E; e += blockDim.x) mx = fmaxf(mx, row[e]);
  mx = block_max(mx);
  float sum = 0.0f;
  for (int e = threadIdx.x; e < E; e += blockDim.x) sum += (p[e] = expf(row[e] - mx));
  sum = block_sum(sum);
  for (int e = threadIdx.x; e < E; e += blockDim.x) p[e] /= sum;
  __syncthreads();
  float chosen_sum = 0.0f;
  for (int s = 0; s < k; ++s) {
    float v = -1.0f;
    int i = 0x7fffffff;
    for (int e = threadIdx.x; e < E; e += blockDim.x)
      if (p[e] > v || (p[e] == v && e < i)) v = p[e], i = e;
    block_argmax(v, i);
    if (threadIdx.x == 0) {
      idx[size_t(blockIdx.x) * k + s] = i;
      weight[size_t(blockIdx.x) * k + s] = v;
      p[i] = -2.0f;  // taken
    }
    chosen_sum += v;
    __syncthreads();
  }
  if (norm_topk && threadIdx.x < k) weight[size_t(blockIdx.x) * k + threadIdx.x] /= chosen_sum;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Grid (ceil(Fe / kWarps), T*k).
template <typename W>
__global__ void __launch_bounds__(kWarps * 32) ExpertSwiGLUKernel(const void* const* __restrict__ gate,
                                                                  const void* const* __restrict__ up, int Fe, int H,
                                                                  const float* __restrict__ x,
                                                                  const int32_t* __restrict__ idx, int k, bool vec,
                                                                  float* __restrict__ act) {
  const int f = blockIdx.x * kWarps + (threadIdx.x >> 5), slot = blockIdx.y;
  if (f >= Fe) return;
  const int e = idx[slot];
  const float* xr = x + size_t(slot / k) * H;
  const float g = warp_dot(static_cast<const W*>(gate[e]) + size_t(f) * H, xr, H, vec);
  const float u = warp_dot(static_cast<const W*>(up[e]) + size_t(f) * H, xr, H, vec);
  if ((threadIdx.x & 31) == 0) act[size_t(slot) * Fe + f] = siluf_(g) * u;
}

// Grid (ceil(H / kWarps), n_slots).
template <typename W>
__global__ void __launch_bounds__(kWarps * 32) ExpertDownKernel(const void* const* __restrict__ down, int H, int Fe,
                                                                const float* __restrict__ act,
                                                                const int32_t* __restrict__ idx, bool vec,
                                                                float* __restrict__ out) {
  const int r = blockIdx.x * kWarps + (threadIdx.x >> 5), slot = blockIdx.y;
  if (r >= H) return;
  const float s = warp_dot(static_cast<const W*>(down[idx[slot]]) + size_t(r) * Fe, act + size_t(slot) * Fe, Fe, vec);
  if ((threadIdx.x & 31) == 0) out[size_t(slot) * H + r] = s;
}

__global__ void CombineKernel(const float* __restrict__ out, const float* __restrict__ weight,
                              const float* __restrict__ shared, const float* __restrict__ shared_gate, int k, int H,
                              float* __restrict__ y) {
  const int t = blockIdx.x;
  const float sg = shared ? sigmoidf_(shared_gate[t]) : 0.0f;
  for (int d = threadIdx.x; d < H; d += blockDim.x) {
    float acc = 0.0f;
    for (int i = 0; i < k; ++i) acc += weight[size_t(t) * k + i] * out[(size_t(t) * k + i) * H + d];
    if (shared) acc += sg * shared[size_t(t) * H + d];
    y[size_t(t) * H + d] = acc;
  }
}

}  // namespace

cudaError_t TopK(const float* logits, int T, int E, int k, bool norm_topk, int32_t* idx, float* weight,
                 cudaStream_t stream) {
  if (k < 1 || k > E || k > kTopKThreads) IMP_DISPATCH_FAIL("num_experts_per_tok", k);
  if (E > 12288) IMP_DISPATCH_FAIL("num_experts (<= 12288)", E);
  if (T <= 0) return cudaSuccess;
  TopKKernel<<<T, kTopKThreads, size_t(E) * sizeof(float), stream>>>(logits, E, k, norm_topk, idx, weight);
  return cudaGetLastError();
}

// The pointer tables are device arrays; 16-byte loads need every expert matrix 16-byte aligned, which the host
// guarantees (it places each matrix at a 256-byte boundary) and says so with the row length alone.
cudaError_t ExpertSwiGLU(const void* const* gate, const void* const* up, WType wtype, int Fe, int H,
                         const float* x, const int32_t* idx, int T, int k, float* act, cudaStream_t stream) {
  if (wtype_is_quantized(wtype)) return quant_gemv::ExpertSwiGLU(gate, up, wtype, Fe, H, x, idx, T, k, act, stream);
  if (T <= 0) return cudaSuccess;
  const dim3 grid((Fe + kWarps - 1) / kWarps, T * k);
  DISPATCH_WTYPE(wtype, W, {
    const bool vec = aligned16(x) && H % kVec<W> == 0;
    ExpertSwiGLUKernel<W><<<grid, kWarps * 32, 0, stream>>>(gate, up, Fe, H, x, idx, k, vec, act);
  })
  return cudaGetLastError();
}

cudaError_t ExpertDown(const void* const* down, WType wtype, int H, int Fe, const float* act, const int32_t* idx,
                       int n_slots, float* out, cudaStream_t stream) {
  if (wtype_is_quantized(wtype)) return quant_gemv::ExpertDown(down, wtype, H, Fe, act, idx, n_slots, out, stream);
  if (n_slots <= 0) return cudaSuccess;
  const dim3 grid((H + kWarps - 1) / kWarps, n_slots);
  DISPATCH_WTYPE(wtype, W, {
    const bool vec = aligned16(act) && Fe % kVec<W> == 0;
    ExpertDownKernel<W><<<grid, kWarps * 32, 0, stream>>>(down, H, Fe, act, idx, vec, out);
  })
  return cudaGetLastError();
}

cudaError_t Combine(const float* out, const float* weight, const float* shared, const float* shared_gate, int T,
                    int k, int H, float* y, cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  CombineKernel<<<T, 256, 0, stream>>>(out, weight, shared, shared_gate, k, H, y);
  return cudaGetLastError();
}

}  // namespace imp::kernels::moe
