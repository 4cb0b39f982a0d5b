#include "sampling.cuh"

#include "dispatch.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <cmath>
#include <cstdio>

namespace imp::kernels::sampling {

namespace {

constexpr int kThreads = 512;

struct ValIdx {
  float v;
  int i;
};

struct MaxLowIndex {
  __device__ __forceinline__ ValIdx operator()(const ValIdx& a, const ValIdx& b) const {
    // NaN never wins; equal values go to the lower index.
    if (b.v > a.v || (b.v == a.v && b.i < a.i) || (a.v != a.v && b.v == b.v)) return b;
    return a;
  }
};

__global__ void __launch_bounds__(kThreads) ArgmaxKernel(const float* __restrict__ logits, int n_vocab,
                                                         int32_t* __restrict__ out) {
  using Reduce = cub::BlockReduce<ValIdx, kThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const float* row = logits + size_t(blockIdx.x) * n_vocab;
  ValIdx best{-INFINITY, 0x7fffffff};
  const MaxLowIndex op;
  for (int i = threadIdx.x; i < n_vocab; i += kThreads) best = op(best, ValIdx{row[i], i});
  const ValIdx r = Reduce(temp).Reduce(best, op);
  if (threadIdx.x == 0) out[blockIdx.x] = r.i == 0x7fffffff ? 0 : r.i;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Shared pieces                                                                                              */
/* ---------------------------------------------------------------------------------------------------------- */

constexpr unsigned kFullMask = 0xffffffffu;

struct MaxFloat {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}
__device__ __forceinline__ int WarpMax(int v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}
// A butterfly: every lane adds the same pairs (addition commutes), so every lane ends with the same bits.
__device__ __forceinline__ double WarpSum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// exp(logit / T - max / T) written as the host writes it, double(logit) * inv_t - mx, rounded after each
// operation: without the FMA that nvcc would otherwise contract it into, each term is the host's up to exp's
// own last-bit rounding.
__device__ __forceinline__ double TemperedExp(float logit, double inv_t, double mx) {
  return exp(__dsub_rn(__dmul_rn(double(logit), inv_t), mx));
}

// A row's mx (its largest logit times inv_t, as the host's max_element(...) * inv_t) and the sum of its tempered
// exps, from the per-chunk partials, in one fixed order so that every block of the row gets the same bits. Called
// by a whole warp; every lane gets the result.
__device__ __forceinline__ double RowMx(const float* part_max, int n_chunks, double inv_t) {
  float m = -INFINITY;
  for (int c = threadIdx.x % 32; c < n_chunks; c += 32) m = fmaxf(m, part_max[c]);
  return __dmul_rn(double(WarpMax(m)), inv_t);
}
__device__ __forceinline__ double RowSum(const double* part_sum, int n_chunks) {
  double s = 0;
  for (int c = threadIdx.x % 32; c < n_chunks; c += 32) s += part_sum[c];
  return WarpSum(s);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Distribution                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

// The full-row passes (max, sum of exps, the softmax write) run kChunk logits per block so that a few rows of a
// large vocabulary still fill the GPU; the walk over a sorted row's kept prefix is one block per row.
constexpr int kChunkThreads = 256;
constexpr int kChunk = 8192;
constexpr int kSelectThreads = 256;
constexpr int kSelectItems = 8;  // candidates per thread per tile of the top-p scan and the min-p search
constexpr int kMaxRows = 65535;  // gridDim.y of the chunk passes
constexpr size_t kAlign = 256;

int NumChunks(int n_vocab) { return (n_vocab + kChunk - 1) / kChunk; }

// Sort key: the row above the logit, so that one device-wide sort orders every row at once (a segmented sort
// would give each row a single block). The logit's bits are mapped so that ascending keys are descending
// logits; the sort is stable and the ids go in ascending, so equal logits keep the lower id first, as the host's
// comparator does. -0 is +0 (the host sees equal probabilities there too). Ordering by logit is ordering by p
// since exp is monotone; where distinct logits give equal p (both underflow to 0, or differ below double
// resolution) the host orders by id instead, which only matters if a cut falls between them, and a p of 0 is
// never kept by top-p or min-p nor given any mass by top-k.
__device__ __forceinline__ uint32_t DescendingKey(float logit) {
  uint32_t u = __float_as_uint(logit);
  if ((u & 0x7fffffffu) == 0) u = 0;
  const uint32_t ascending = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~ascending;
}
__device__ __forceinline__ float LogitOfKey(uint64_t key) {
  const uint32_t ascending = ~uint32_t(key);
  return __uint_as_float((ascending & 0x80000000u) ? (ascending & 0x7fffffffu) : ~ascending);
}

int SortEndBit(int n_rows) {
  int bits = 0;
  while ((1 << bits) < n_rows) ++bits;
  return 32 + bits;
}

// Per-chunk max of each row; with kSort also the sort's input (keys and ids) and zeros over the row of probs,
// which the select pass then overwrites at the kept ids only.
template <bool kSort>
__global__ void __launch_bounds__(kChunkThreads)
    RowMaxKernel(const float* __restrict__ logits, int n_vocab, int ld_logits, float* __restrict__ part_max,
                 uint64_t* __restrict__ keys, int32_t* __restrict__ ids, float* __restrict__ probs, int ld_probs) {
  const int row = blockIdx.y, chunk = blockIdx.x, end = min(n_vocab, (chunk + 1) * kChunk);
  const float* x = logits + size_t(row) * ld_logits;
  float m = -INFINITY;
  for (int i = chunk * kChunk + threadIdx.x; i < end; i += kChunkThreads) {
    const float l = x[i];
    m = fmaxf(m, l);
    if constexpr (kSort) {
      const size_t o = size_t(row) * n_vocab + i;
      keys[o] = (uint64_t(row) << 32) | DescendingKey(l);
      ids[o] = i;
      probs[size_t(row) * ld_probs + i] = 0.0f;
    }
  }
  using Reduce = cub::BlockReduce<float, kChunkThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const float r = Reduce(temp).Reduce(m, MaxFloat());
  if (threadIdx.x == 0) part_max[size_t(row) * gridDim.x + chunk] = r;
}

// Per-chunk sum of each row's tempered exps (the softmax's denominator, in double as on the host).
__global__ void __launch_bounds__(kChunkThreads)
    RowSumKernel(const float* __restrict__ logits, int n_vocab, int ld_logits, const float* __restrict__ part_max,
                 double inv_t, double* __restrict__ part_sum) {
  const int row = blockIdx.y, chunk = blockIdx.x, n_chunks = gridDim.x, end = min(n_vocab, (chunk + 1) * kChunk);
  __shared__ double s_mx;
  if (threadIdx.x < 32) {
    const double mx = RowMx(part_max + size_t(row) * n_chunks, n_chunks, inv_t);
    if (threadIdx.x == 0) s_mx = mx;
  }
  __syncthreads();
  const double mx = s_mx;
  const float* x = logits + size_t(row) * ld_logits;
  double s = 0;
  for (int i = chunk * kChunk + threadIdx.x; i < end; i += kChunkThreads) s += TemperedExp(x[i], inv_t, mx);
  using Reduce = cub::BlockReduce<double, kChunkThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const double r = Reduce(temp).Sum(s);
  if (threadIdx.x == 0) part_sum[size_t(row) * n_chunks + chunk] = r;
}

// A row's tempered maximum and sum of exponentials from its per-chunk partials (the first warp reduces them), to
// every thread of the block.
__device__ __forceinline__ void RowMaxSum(const float* part_max, const double* part_sum, int n_chunks, double inv_t,
                                          double& mx, double& sum) {
  __shared__ double s_mx, s_sum;
  if (threadIdx.x < 32) {
    const double m = RowMx(part_max, n_chunks, inv_t);
    const double su = RowSum(part_sum, n_chunks);
    if (threadIdx.x == 0) s_mx = m, s_sum = su;
  }
  __syncthreads();
  mx = s_mx;
  sum = s_sum;
}

// No filter: probs = exp / sum. (The host divides by the kept sum once more, which with every token kept is 1 up
// to rounding: a difference below one float ulp.)
__global__ void __launch_bounds__(kChunkThreads)
    SoftmaxWriteKernel(const float* __restrict__ logits, int n_vocab, int ld_logits,
                       const float* __restrict__ part_max, const double* __restrict__ part_sum, double inv_t,
                       float* __restrict__ probs, int ld_probs) {
  const int row = blockIdx.y, chunk = blockIdx.x, n_chunks = gridDim.x, end = min(n_vocab, (chunk + 1) * kChunk);
  double mx, sum;
  RowMaxSum(part_max + size_t(row) * n_chunks, part_sum + size_t(row) * n_chunks, n_chunks, inv_t, mx, sum);
  const float* x = logits + size_t(row) * ld_logits;
  float* out = probs + size_t(row) * ld_probs;
  for (int i = chunk * kChunk + threadIdx.x; i < end; i += kChunkThreads)
    out[i] = float(TemperedExp(x[i], inv_t, mx) / sum);
}

using SelectReduce = cub::BlockReduce<double, kSelectThreads>;
using SelectScan = cub::BlockScan<double, kSelectThreads>;
struct SelectShared {
  union {
    typename SelectReduce::TempStorage reduce;
    typename SelectScan::TempStorage scan;
  } temp;
  double value;
  int found;
};

// sum of p(i) over [begin, end), in every thread.
template <typename P>
__device__ __forceinline__ double BlockSum(const P& p, int begin, int end, SelectShared& sh) {
  double s = 0;
  for (int i = begin + threadIdx.x; i < end; i += kSelectThreads) s += p(i);
  const double r = SelectReduce(sh.temp.reduce).Sum(s);
  if (threadIdx.x == 0) sh.value = r;
  __syncthreads();
  const double out = sh.value;
  __syncthreads();  // sh is free again for the next call
  return out;
}

// The host's top-p: k = 1 + the first i < keep whose running sum p(0) + ... + p(i) >= top_p, or keep if none.
// A block scan per tile of kSelectThreads * kSelectItems candidates, the sum carried from tile to tile; it stops
// at the first tile that reaches top_p, so it reads only the kept prefix and one tile past it at most.
template <typename P>
__device__ __forceinline__ int TopPKeep(const P& p, int keep, double top_p, SelectShared& sh) {
  if (threadIdx.x == 0) sh.found = INT_MAX;
  __syncthreads();
  double carry = 0;  // the running sum before this tile (the same in every thread)
  for (int base = 0; base < keep; base += kSelectThreads * kSelectItems) {
    const int first = base + threadIdx.x * kSelectItems;  // blocked: each thread's candidates are consecutive
    double v[kSelectItems], local = 0;
#pragma unroll
    for (int k = 0; k < kSelectItems; ++k) local += (v[k] = first + k < keep ? p(first + k) : 0.0);
    double before, tile_sum;
    SelectScan(sh.temp.scan).ExclusiveSum(local, before, tile_sum);
    double cum = carry + before;
#pragma unroll
    for (int k = 0; k < kSelectItems; ++k) {
      if (first + k >= keep) break;
      cum += v[k];
      if (cum >= top_p) {
        atomicMin(&sh.found, first + k);
        break;
      }
    }
    carry += tile_sum;
    __syncthreads();
    if (sh.found != INT_MAX) break;
  }
  const int out = sh.found == INT_MAX ? keep : sh.found + 1;
  __syncthreads();
  return out;
}

// The host's min-p: the first i in [begin, end) with !(p(i) >= floor), or end if none.
template <typename P>
__device__ __forceinline__ int FirstBelow(const P& p, int begin, int end, double floor, SelectShared& sh) {
  if (threadIdx.x == 0) sh.found = INT_MAX;
  __syncthreads();
  for (int base = begin; base < end; base += kSelectThreads * kSelectItems) {
#pragma unroll
    for (int k = 0; k < kSelectItems; ++k) {
      const int i = base + k * kSelectThreads + threadIdx.x;
      if (i < end && !(p(i) >= floor)) {
        atomicMin(&sh.found, i);
        break;
      }
    }
    __syncthreads();
    if (sh.found != INT_MAX) break;
  }
  const int out = sh.found == INT_MAX ? end : sh.found;
  __syncthreads();
  return out;
}

// One block per sorted row: Sampler::distribution from the sort on, step for step. p0(i) is the softmax of the
// i-th largest logit, p(i) the same after top-k's renormalisation; both are recomputed where needed rather than
// stored (a double exp is cheaper than the memory it would take for the whole row).
__global__ void __launch_bounds__(kSelectThreads)
    SelectKernel(const uint64_t* __restrict__ sorted_keys, const int32_t* __restrict__ sorted_ids, int n_vocab,
                 const float* __restrict__ part_max, const double* __restrict__ part_sum, int n_chunks, double inv_t,
                 int top_k, bool top_p_on, float top_p, bool min_p_on, float min_p, float* __restrict__ probs,
                 int ld_probs) {
  const int row = blockIdx.x;
  __shared__ SelectShared sh;
  double mx, sum;
  RowMaxSum(part_max + size_t(row) * n_chunks, part_sum + size_t(row) * n_chunks, n_chunks, inv_t, mx, sum);
  const uint64_t* key = sorted_keys + size_t(row) * n_vocab;
  const int32_t* id = sorted_ids + size_t(row) * n_vocab;
  const auto p0 = [&](int i) { return TemperedExp(LogitOfKey(key[i]), inv_t, mx) / sum; };

  int keep = n_vocab;
  double top_k_sum = 1.0;
  if (top_k > 0) {  // the launcher passes 0 unless 0 < top_k < n_vocab
    keep = top_k;
    top_k_sum = BlockSum(p0, 0, keep, sh);
  }
  const auto p = [&](int i) { return top_k > 0 ? p0(i) / top_k_sum : p0(i); };
  if (top_p_on) keep = TopPKeep(p, keep, double(top_p), sh);
  if (min_p_on) keep = FirstBelow(p, 1, keep, __dmul_rn(double(min_p), p(0)), sh);
  const double kept_sum = BlockSum(p, 0, keep, sh);
  float* out = probs + size_t(row) * ld_probs;
  for (int i = threadIdx.x; i < keep; i += kSelectThreads) out[id[i]] = float(p(i) / kept_sum);
}

struct DistributionLayout {
  size_t part_max = 0, part_sum = 0, keys[2] = {0, 0}, ids[2] = {0, 0}, cub_temp = 0, cub_bytes = 0, bytes = 0;
};

// Offsets from a kAlign-aligned base; bytes includes kAlign of slack to align a work pointer that is not.
cudaError_t MakeLayout(int n_rows, int n_vocab, DistributionLayout& L) {
  const size_t n = size_t(n_rows) * size_t(n_vocab), partials = size_t(n_rows) * size_t(NumChunks(n_vocab));
  size_t off = 0;
  const auto take = [&off](size_t bytes) {
    const size_t at = off;
    off = (off + bytes + kAlign - 1) / kAlign * kAlign;
    return at;
  };
  L.part_max = take(partials * sizeof(float));
  L.part_sum = take(partials * sizeof(double));
  for (size_t& k : L.keys) k = take(n * sizeof(uint64_t));
  for (size_t& i : L.ids) i = take(n * sizeof(int32_t));
  cub::DoubleBuffer<uint64_t> keys(nullptr, nullptr);
  cub::DoubleBuffer<int32_t> ids(nullptr, nullptr);
  const cudaError_t e =
      cub::DeviceRadixSort::SortPairs(nullptr, L.cub_bytes, keys, ids, int(n), 0, SortEndBit(n_rows), nullptr);
  if (e != cudaSuccess) return e;
  L.cub_temp = take(L.cub_bytes);
  L.bytes = off + kAlign;
  return cudaSuccess;
}

bool ValidShape(int n_rows, int n_vocab) {
  return n_vocab > 0 && n_rows >= 0 && n_rows <= kMaxRows && int64_t(n_rows) * n_vocab <= int64_t(INT_MAX);
}

// The detail of a refused value that is not an int (IMP_DISPATCH_FAIL's "Unsupported <what>: <value>").
cudaError_t Refuse(const char* what, double value) {
  char msg[160];
  std::snprintf(msg, sizeof msg, "Unsupported %s: %g", what, value);
  set_error_detail(msg);
  return cudaErrorInvalidValue;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Draw and SpeculativeAccept                                                                                 */
/* ---------------------------------------------------------------------------------------------------------- */

constexpr int kDrawThreads = 512;
constexpr int kDrawWarps = kDrawThreads / 32;
constexpr int kDrawItems = 8;

using DrawScan = cub::BlockScan<double, kDrawThreads>;
struct DrawShared {
  typename DrawScan::TempStorage scan;
  double seg_total[kDrawWarps], seg_positive[kDrawWarps];
  int seg_last[kDrawWarps];
  double target, prefix;
  int start, last, found;
  bool empty;
};

// Sampler::draw over x(0..n-1) with uniform u: target = u * (sum of all x), then the first i with x(i) > 0 and
// target < (running sum of the positive x up to i), else the last positive i, else 0; -1 instead when the sum is
// not positive and minus_one_if_empty (the residual's "sum > 0 ? residual : p"). Every thread returns it.
// Pass 1: each warp sums one contiguous segment of the row; thread 0 finds the segment where the target falls.
// Pass 2: the block scans from that segment's start, tile by tile, and stops at the first tile holding the id. The
// scan goes on past the segment if rounding left the target beyond it, and falls back to the last positive id.
template <typename X>
__device__ __forceinline__ int BlockDraw(const X& x, int n, double u, bool minus_one_if_empty, DrawShared& sh) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int seg = (n + kDrawWarps - 1) / kDrawWarps, seg_end = min(n, (warp + 1) * seg);
  double total = 0, positive = 0;
  int last = -1;
#pragma unroll 4
  for (int i = warp * seg + lane; i < seg_end; i += 32) {
    const float v = x(i);
    total += v;
    if (v > 0) positive += v, last = i;
  }
  total = WarpSum(total), positive = WarpSum(positive), last = WarpMax(last);
  if (lane == 0) sh.seg_total[warp] = total, sh.seg_positive[warp] = positive, sh.seg_last[warp] = last;
  __syncthreads();
  if (threadIdx.x == 0) {
    double sum = 0, run = 0;
    int start = kDrawWarps, last_all = -1;
    for (int w = 0; w < kDrawWarps; ++w) sum += sh.seg_total[w], last_all = max(last_all, sh.seg_last[w]);
    const double target = u * sum;
    for (int w = 0; w < kDrawWarps; ++w) {
      if (target < run + sh.seg_positive[w]) {
        start = w;
        break;
      }
      run += sh.seg_positive[w];
    }
    sh.target = target, sh.prefix = run, sh.start = start, sh.last = last_all, sh.found = INT_MAX;
    sh.empty = !(sum > 0);
  }
  __syncthreads();
  const double target = sh.target;
  const int fallback = sh.last < 0 ? 0 : sh.last;
  int out = minus_one_if_empty && sh.empty ? -1 : fallback;
  if (out >= 0 && sh.start < kDrawWarps) {
    double carry = sh.prefix;  // the running sum before this tile (the same in every thread)
    for (int base = sh.start * seg; base < n; base += kDrawThreads * kDrawItems) {
      const int first = base + threadIdx.x * kDrawItems;  // blocked: each thread's ids are consecutive
      float v[kDrawItems];
      double local = 0;
#pragma unroll
      for (int k = 0; k < kDrawItems; ++k) {
        v[k] = first + k < n ? x(first + k) : 0.0f;
        if (v[k] > 0) local += v[k];
      }
      double before, tile_sum;
      DrawScan(sh.scan).ExclusiveSum(local, before, tile_sum);
      double cum = carry + before;
#pragma unroll
      for (int k = 0; k < kDrawItems; ++k) {
        if (!(v[k] > 0)) continue;
        cum += v[k];
        if (target < cum) {
          atomicMin(&sh.found, first + k);
          break;
        }
      }
      carry += tile_sum;
      __syncthreads();
      if (sh.found != INT_MAX) break;
    }
    if (sh.found != INT_MAX) out = sh.found;
  }
  __syncthreads();  // sh is free again for the next call
  return out;
}

__global__ void __launch_bounds__(kDrawThreads)
    DrawKernel(const float* __restrict__ probs, int n_vocab, int ld, const double* __restrict__ uniforms,
               int32_t* __restrict__ out) {
  __shared__ DrawShared sh;
  const float* row = probs + size_t(blockIdx.x) * ld;
  const int id = BlockDraw([row](int i) { return row[i]; }, n_vocab, uniforms[blockIdx.x], false, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = id;
}

// Engine::verify's sampling loop. The accept tests are independent of each other (draft j's uses uniforms[j]
// whatever came before), so they run in parallel and the first rejection is the smallest rejected j.
// (It runs alone, one block: min blocks 1 lets ptxas keep the three inlined draws in registers on sm_80.)
__global__ void __launch_bounds__(kDrawThreads, 1)
    SpeculativeAcceptKernel(const float* __restrict__ p, int ldp, const float* __restrict__ q, int ldq,
                            const int32_t* __restrict__ drafts, int n_drafts, int n_vocab,
                            const double* __restrict__ uniforms, int32_t* __restrict__ result) {
  __shared__ DrawShared sh;
  __shared__ int s_rejected;
  if (threadIdx.x == 0) s_rejected = n_drafts;
  __syncthreads();
  for (int j = threadIdx.x; j < n_drafts; j += kDrawThreads) {
    const int32_t d = drafts[j];
    bool accept = false;
    if (d >= 0 && d < n_vocab) {
      const float pd = p[size_t(j) * ldp + d], qd = q[size_t(j) * ldq + d];
      accept = pd > 0 && uniforms[j] * qd < pd;  // double * float < float, as on the host
    }
    if (!accept) atomicMin(&s_rejected, j);
  }
  __syncthreads();
  const int j = s_rejected;
  int next;
  if (j < n_drafts) {
    const float* pj = p + size_t(j) * ldp;
    const float* qj = q + size_t(j) * ldq;
    const double u = uniforms[j + 1];
    next = BlockDraw(
        [pj, qj](int i) {
          const float r = pj[i] - qj[i];
          return 0.0f < r ? r : 0.0f;  // std::max(0.0f, p - q)
        },
        n_vocab, u, true, sh);
    if (next < 0) next = BlockDraw([pj](int i) { return pj[i]; }, n_vocab, u, false, sh);
  } else {
    const float* pn = p + size_t(n_drafts) * ldp;
    next = BlockDraw([pn](int i) { return pn[i]; }, n_vocab, uniforms[n_drafts], false, sh);
  }
  if (threadIdx.x == 0) result[0] = j, result[1] = next, result[2] = j < n_drafts ? j + 2 : n_drafts + 1;
}

}  // namespace

cudaError_t Argmax(const float* logits, int n_rows, int n_vocab, int32_t* out, cudaStream_t stream) {
  if (n_vocab <= 0) IMP_DISPATCH_FAIL("n_vocab", n_vocab);
  if (n_rows <= 0) return cudaSuccess;
  ArgmaxKernel<<<n_rows, kThreads, 0, stream>>>(logits, n_vocab, out);
  return cudaGetLastError();
}

size_t DistributionWorkBytes(int n_rows, int n_vocab) {
  DistributionLayout L;
  if (!ValidShape(n_rows, n_vocab) || MakeLayout(n_rows, n_vocab, L) != cudaSuccess) return 0;
  return L.bytes;
}

cudaError_t Distribution(const float* logits, int n_rows, int n_vocab, int ld_logits, Params p, void* work,
                         size_t work_bytes, float* probs, int ld_probs, cudaStream_t stream) {
  if (n_vocab <= 0) IMP_DISPATCH_FAIL("n_vocab", n_vocab);
  if (n_rows < 0 || n_rows > kMaxRows) IMP_DISPATCH_FAIL("n_rows (0..65535)", n_rows);
  if (!ValidShape(n_rows, n_vocab)) IMP_DISPATCH_FAIL("n_rows * n_vocab (> INT_MAX), n_rows", n_rows);
  if (ld_logits < n_vocab) IMP_DISPATCH_FAIL("ld_logits (< n_vocab)", ld_logits);
  if (ld_probs < n_vocab) IMP_DISPATCH_FAIL("ld_probs (< n_vocab)", ld_probs);
  if (!(p.temperature > 0.0f) || std::isinf(p.temperature)) return Refuse("temperature (must be > 0)", p.temperature);
  if (n_rows == 0) return cudaSuccess;
  DistributionLayout L;
  const cudaError_t layout_error = MakeLayout(n_rows, n_vocab, L);
  if (layout_error != cudaSuccess) return layout_error;
  if (work == nullptr || work_bytes < L.bytes)
    return Refuse("work_bytes (below DistributionWorkBytes)", double(work == nullptr ? 0 : work_bytes));

  char* base = static_cast<char*>(work);
  base += (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
  float* part_max = reinterpret_cast<float*>(base + L.part_max);
  double* part_sum = reinterpret_cast<double*>(base + L.part_sum);
  const int n_chunks = NumChunks(n_vocab);
  const dim3 grid(n_chunks, n_rows);
  const double inv_t = 1.0 / double(p.temperature);  // the host's 1.0 / temperature
  const bool top_k_on = p.top_k > 0 && p.top_k < n_vocab, top_p_on = p.top_p < 1.0f, min_p_on = p.min_p > 0.0f;

  if (!top_k_on && !top_p_on && !min_p_on) {
    RowMaxKernel<false><<<grid, kChunkThreads, 0, stream>>>(logits, n_vocab, ld_logits, part_max, nullptr, nullptr,
                                                            nullptr, 0);
    RowSumKernel<<<grid, kChunkThreads, 0, stream>>>(logits, n_vocab, ld_logits, part_max, inv_t, part_sum);
    SoftmaxWriteKernel<<<grid, kChunkThreads, 0, stream>>>(logits, n_vocab, ld_logits, part_max, part_sum, inv_t,
                                                           probs, ld_probs);
    return cudaGetLastError();
  }

  cub::DoubleBuffer<uint64_t> keys(reinterpret_cast<uint64_t*>(base + L.keys[0]),
                                   reinterpret_cast<uint64_t*>(base + L.keys[1]));
  cub::DoubleBuffer<int32_t> ids(reinterpret_cast<int32_t*>(base + L.ids[0]),
                                 reinterpret_cast<int32_t*>(base + L.ids[1]));
  RowMaxKernel<true><<<grid, kChunkThreads, 0, stream>>>(logits, n_vocab, ld_logits, part_max, keys.Current(),
                                                         ids.Current(), probs, ld_probs);
  RowSumKernel<<<grid, kChunkThreads, 0, stream>>>(logits, n_vocab, ld_logits, part_max, inv_t, part_sum);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  // The sort's passes (and so which buffer ends up current) are fixed by the key bits alone: the same at every
  // replay of a captured graph.
  size_t cub_bytes = L.cub_bytes;
  e = cub::DeviceRadixSort::SortPairs(base + L.cub_temp, cub_bytes, keys, ids, n_rows * n_vocab, 0,
                                      SortEndBit(n_rows), stream);
  if (e != cudaSuccess) return e;
  SelectKernel<<<n_rows, kSelectThreads, 0, stream>>>(keys.Current(), ids.Current(), n_vocab, part_max, part_sum,
                                                      n_chunks, inv_t, top_k_on ? p.top_k : 0, top_p_on, p.top_p,
                                                      min_p_on, p.min_p, probs, ld_probs);
  return cudaGetLastError();
}

cudaError_t Draw(const float* probs, int n_rows, int n_vocab, int ld, const double* uniforms, int32_t* out,
                 cudaStream_t stream) {
  if (n_vocab <= 0) IMP_DISPATCH_FAIL("n_vocab", n_vocab);
  if (n_rows < 0) IMP_DISPATCH_FAIL("n_rows", n_rows);
  if (ld < n_vocab) IMP_DISPATCH_FAIL("ld (< n_vocab)", ld);
  if (n_rows == 0) return cudaSuccess;
  DrawKernel<<<n_rows, kDrawThreads, 0, stream>>>(probs, n_vocab, ld, uniforms, out);
  return cudaGetLastError();
}

cudaError_t SpeculativeAccept(const float* p, int ldp, const float* q, int ldq, const int32_t* drafts, int n_drafts,
                              int n_vocab, const double* uniforms, int32_t* result, cudaStream_t stream) {
  if (n_vocab <= 0) IMP_DISPATCH_FAIL("n_vocab", n_vocab);
  if (n_drafts < 0) IMP_DISPATCH_FAIL("n_drafts", n_drafts);
  if (ldp < n_vocab) IMP_DISPATCH_FAIL("ldp (< n_vocab)", ldp);
  if (n_drafts > 0 && ldq < n_vocab) IMP_DISPATCH_FAIL("ldq (< n_vocab)", ldq);
  SpeculativeAcceptKernel<<<1, kDrawThreads, 0, stream>>>(p, ldp, q, ldq, drafts, n_drafts, n_vocab, uniforms,
                                                          result);
  return cudaGetLastError();
}

}  // namespace imp::kernels::sampling
