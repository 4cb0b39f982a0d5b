#include "gemv.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "gemv_mma.cuh"
#include "launch.cuh"

#include <cstdlib>
#include <cstring>

namespace imp::kernels::gemv {

namespace {

constexpr int kWarps = 8;  // warps per block
constexpr int kSplit = 2;  // warps that share one group of weight rows, each taking every other 16-byte column run

// A block is kWarps / kSplit row groups of R weight rows (R = kRowsPerWarp<T>); the kSplit warps of a group split
// the columns: lane l of warp s reads columns (s*32 + l)*V + j*kSplit*32*V, j = 0, 1, ...
// Why R grows with T: every 16-byte weight load meets 2T float4 loads of x from L1 (T for F32), shared by the R
// rows of the group, and from T = 3 on that L1 traffic, not HBM, bounds a kernel with small R. Why the split: it
// keeps the warp count up as R grows (a 4096-row matrix at R = 4 would be 1024 warps, 8 per SM), and it speeds
// up plain decoding as well (a 4096 x 12288 matrix has only 4096 rows to share among 132 SMs). H100, ten
// launches back to back (docs/bench/2026-11-24-h100-gemv-session3.txt): 12288 x 4096 at T = 1 / 4 reads 2.97 /
// 2.66 TB/s where the previous kernel (one warp per group, R = 2 for T = 2..4) read 2.94 / 2.37, and 4096 x 12288
// 2.90 / 2.64 where it read 2.61 / 2.56; at the 9B-like shape a verify of 4 rows went from 1.18x a decode step
// to 1.13x, and the decode step itself from 6.54 to 6.2-6.3 ms.
template <int T>
constexpr int kRowsPerWarp = T == 1 ? 1 : T <= 6 ? 4 : 8;
// 16-byte weight loads in flight per lane and row before the first is used (R x U loads in all).
template <int T>
constexpr int kUnroll = T == 1 ? 4 : T <= 3 ? 2 : 1;

template <typename W>
__device__ __forceinline__ void unpack16(const uint4& raw, float* out) {
  if constexpr (sizeof(W) == 4) {
    out[0] = __uint_as_float(raw.x);
    out[1] = __uint_as_float(raw.y);
    out[2] = __uint_as_float(raw.z);
    out[3] = __uint_as_float(raw.w);
  } else {
    const W* h = reinterpret_cast<const W*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = to_float(h[i]);
  }
}

// Row group g of block b computes rows R*(b*kWarps/kSplit + g) .. +R-1. Each lane adds its columns of a row in
// ascending order with the same expression per group of 4 whatever T, R and U are; the warp sums its lanes with
// warp_sum and the row is part[0] + part[1] + ... in split order. So a row's result does not depend on T (a
// verify row equals the same row decoded alone, bit for bit).
template <typename W, int T, bool VEC>
__global__ void __launch_bounds__(kWarps * 32, 1) GemvKernel(const W* __restrict__ w, int rows, int cols,
                                                          const float* __restrict__ x, Segments out) {
  constexpr int R = kRowsPerWarp<T>;
  constexpr int G = kWarps / kSplit;
  __shared__ float part[G * R * T][kSplit];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = warp / kSplit, split = warp % kSplit;
  const int row0 = (blockIdx.x * G + group) * R;
  // x comes from the previous kernel (launch.cuh). Issuing the first weight loads before this wait was tried and
  // made 9B-like decoding slower on the H100 (6.29-6.30 ms against 6.20, two runs each): it costs registers
  // (T = 1: 76 instead of 60, four blocks per SM down to three) for a gap that PDL already mostly hides.
  pdl_wait();
  pdl_trigger();
  const int n_rows = max(0, min(R, rows - row0));
  float acc[R][T];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;
  if (n_rows == 0) {
    // past the last row: nothing to read, but the block's barrier below still counts this warp
  } else if constexpr (VEC) {
    constexpr int V = kVec<W>;
    constexpr int U = kUnroll<T>;
    constexpr int kStride = kSplit * 32 * V;  // columns between a lane's consecutive 16-byte runs
    int c = (split * 32 + lane) * V;
    for (; c + (U - 1) * kStride < cols; c += U * kStride) {
      uint4 raw[R][U];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int u = 0; u < U; ++u)
          raw[r][u] = r < n_rows ? load_weights16(w + size_t(row0 + r) * cols + c + u * kStride) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float wu[R][V];
#pragma unroll
        for (int r = 0; r < R; ++r) unpack16<W>(raw[r][u], wu[r]);
#pragma unroll
        for (int t = 0; t < T; ++t) {
          const float* xt = x + size_t(t) * cols + c + u * kStride;
#pragma unroll
          for (int i = 0; i < V; i += 4) {
            const float4 xa = *reinterpret_cast<const float4*>(xt + i);
#pragma unroll
            for (int r = 0; r < R; ++r)
              acc[r][t] += wu[r][i] * xa.x + wu[r][i + 1] * xa.y + wu[r][i + 2] * xa.z + wu[r][i + 3] * xa.w;
          }
        }
      }
    }
    for (; c < cols; c += kStride) {
      float wa[R][V];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        if (r < n_rows) load_vec(w + size_t(row0 + r) * cols + c, wa[r]);
        else
#pragma unroll
          for (int i = 0; i < V; ++i) wa[r][i] = 0.0f;
      }
#pragma unroll
      for (int t = 0; t < T; ++t) {
        const float* xt = x + size_t(t) * cols;
#pragma unroll
        for (int i = 0; i < V; i += 4) {
          const float4 xa = *reinterpret_cast<const float4*>(xt + c + i);
#pragma unroll
          for (int r = 0; r < R; ++r)
            acc[r][t] += wa[r][i] * xa.x + wa[r][i + 1] * xa.y + wa[r][i + 2] * xa.z + wa[r][i + 3] * xa.w;
        }
      }
    }
  } else {
    for (int c = split * 32 + lane; c < cols; c += kSplit * 32) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float wv = r < n_rows ? to_float(w[size_t(row0 + r) * cols + c]) : 0.0f;
#pragma unroll
        for (int t = 0; t < T; ++t) acc[r][t] += wv * x[size_t(t) * cols + c];
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float s = warp_sum(acc[r][t]);
      if (lane == 0) part[(group * R + r) * T + t][split] = s;
    }
  __syncthreads();
  for (int i = threadIdx.x; i < G * R * T; i += blockDim.x) {
    const int row = (blockIdx.x * G + i / (R * T)) * R + (i / T) % R, t = i % T;
    if (row >= rows) continue;
    float s = part[i][0];
#pragma unroll
    for (int k = 1; k < kSplit; ++k) s += part[i][k];
    float* yg = out.y[0];
    int begin = 0, end = out.end[0];
#pragma unroll
    for (int g = 1; g < kMaxSegments; ++g)  // constant indices: the segments stay in parameter space
      if (g < out.n && row >= end) begin = end, end = out.end[g], yg = out.y[g];
    yg[size_t(t) * (end - begin) + row - begin] = s;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// IMP_GEMV_MMA=1 sends BF16 to the tensor-core kernel (gemv_mma.cu) at every T. Off by default: on the H100 it
// reads a 12288 x 4096 matrix at 2.2 TB/s for T = 1 where this file's kernel reaches 3.0, so plain decoding is
// slower with it; a verify of 4 rows at the 9B-like shape cost 1.05x a decode step with it against 1.19x with
// this file's earlier kernel, 1.13x with today's (docs/BENCHMARKS.md). The choice holds for the whole process: both kernels give a row the same bits whatever T
// is, but not the same bits as each other, and greedy MTP must equal greedy decoding token for token.
bool mma_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("IMP_GEMV_MMA");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

}  // namespace

cudaError_t Gemv(const void* w, WType wtype, int rows, int cols, const float* x, int T, float* y,
                 cudaStream_t stream) {
  Segments out;
  out.y[0] = y;
  out.end[0] = rows;
  out.n = 1;
  return GemvSegments(w, wtype, cols, x, T, out, stream);
}

cudaError_t GemvSegments(const void* w, WType wtype, int cols, const float* x, int T, const Segments& out,
                         cudaStream_t stream) {
  if (T < 1 || T > kMaxRows) IMP_DISPATCH_FAIL("GEMV rows (1..16)", T);
  if (out.n < 1 || out.n > kMaxSegments) IMP_DISPATCH_FAIL("GEMV segments (1..4)", out.n);
  for (int g = 0; g < out.n; ++g)
    if (out.end[g] <= (g ? out.end[g - 1] : 0) || !out.y[g]) IMP_DISPATCH_FAIL("GEMV segment (empty or no output)", g);
  const int rows = out.end[out.n - 1];
  if (rows <= 0 || cols <= 0) IMP_DISPATCH_FAIL("GEMV shape (rows or cols <= 0)", rows <= 0 ? rows : cols);
  if (mma_enabled() && MmaApplies(wtype, cols, w, x)) return GemvMma(w, cols, x, T, out, stream);
  const dim3 block(kWarps * 32);
  DISPATCH_WTYPE(wtype, W, {
    const bool vec = aligned16(w) && aligned16(x) && cols % kVec<W> == 0;
    DISPATCH_ROWS(T, TR, {
      const int per_block = kWarps / kSplit * kRowsPerWarp<TR>;
      const dim3 grid((rows + per_block - 1) / per_block);
      const cudaError_t e = vec ? launch_pdl(GemvKernel<W, TR, true>, grid, block, 0, stream, static_cast<const W*>(w),
                                             rows, cols, x, out)
                                : launch_pdl(GemvKernel<W, TR, false>, grid, block, 0, stream, static_cast<const W*>(w),
                                             rows, cols, x, out);
      if (e != cudaSuccess) return e;
    })
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::gemv
