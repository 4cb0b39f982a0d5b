// Tensor-core GEMV for BF16 weights: y = x W^T for T = 1..16 activation rows (decode, MTP steps, verify).
//
//   W: (rows, cols) bf16 row-major, 16-byte aligned, cols a multiple of 32
//   x: (T, cols) fp32 row-major, 16-byte aligned;  y: gemv::Segments, each (T, its rows) fp32
//
// Why tensor cores for a memory-bound product: the CUDA-core GEMV (gemv.cu) does T FMAs and a conversion per
// weight element, and from T = 3 on that work, not HBM, sets its speed (a 12288 x 4096 matrix ran at 2.68 TB/s
// for T = 1 and 2.03 TB/s for T = 4 on the H100), so verifying k drafts cost k x 5-10 % of a decode step more.
// mma.sync m16n8k16 does the products at no cost that shows; the kernel is then loads and nothing else.
// Measured on the H100 (docs/BENCHMARKS.md): 12288 x 4096 at 2.2 / 2.2 / 2.4 / 2.4 TB/s for T = 1 / 2 / 3 / 4 where
// the CUDA-core kernel then gave 2.7 / 2.4 / 2.2 / 2.0 (2.7 / 2.6 / 2.4 / 2.2 after its T = 2..4 retune); the lm_head
// at 2.9 TB/s for every T up to 8, where the CUDA-core kernel reads it at 3.15 for T = 1 and 1.6 for T = 8.
// T = 1 stays behind: each lane reads 64 contiguous bytes of a row per load where the CUDA-core kernel reads 512,
// and deeper unrolling or more warps per SM measured slower still. Hence opt-in (IMP_GEMV_MMA=1, gemv.cu).
//
// The activations are fp32 and mma takes bf16, so x is split into hi = bf16(x) and lo = bf16(x - hi) (about 16
// bits of mantissa; the prefill's cuBLAS path does the same) and both go through the same mma: B column n < T is
// hi of x row n, column T + n is lo of x row n, and y[t] = D[:, t] + D[:, T + t]. A column's result depends only
// on that column of B, so a row's result does not depend on T: a verify row equals the same row decoded alone,
// bit for bit (the split below of the columns over warps depends on the matrix shape alone).
//
// Work: a warp owns a tile of 16 weight rows and one of KS contiguous slices of the 32-column chunks; the KS warps
// of a tile sit in one block and their partial tiles are added in a fixed order. Per chunk, lane (g = lane / 4,
// q = lane % 4) loads 16 bytes of rows g and g + 8 at columns 8q .. 8q+7, which serve two k16 steps: step s uses
// columns 8q+4s .. 8q+4s+3. A dot product does not care in which order its k run as long as A and B agree, so
// logical k {2q, 2q+1} of step s is column 8q+4s+{0,1} and {2q+8, 2q+9} is 8q+4s+{2,3}: every A fragment register
// is a word of the lane's own 16-byte load, and its B fragment is a float4 of x at the same columns.
#include "gemv_mma.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "launch.cuh"

#include <cstring>

namespace imp::kernels::gemv {

namespace {

constexpr int kWarps = 8;      // warps per block
// Chunks (1 KiB of weights per warp each) per group; two groups are in flight. Fewer with 3-4 n-tiles (T > 8),
// whose fragments and accumulators need the registers.
template <int NT>
constexpr int kUnrollFor = NT <= 2 ? 4 : 2;
constexpr int kTileRows = 16;  // mma M

// D (16 x 8, fp32) += A (16 x 16, bf16, row) B (16 x 8, bf16, col). Registers as the PTX ISA lays them out:
// a0 = A[g][2q, 2q+1], a1 = A[g+8][2q, 2q+1], a2 = A[g][2q+8, 2q+9], a3 = A[g+8][2q+8, 2q+9]; b0 = B[2q, 2q+1][g],
// b1 = B[2q+8, 2q+9][g]; d = D[g][2q, 2q+1], D[g+8][2q, 2q+1].
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 mma is sm_80+; MmaApplies() keeps older devices off this kernel
#else
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

// Two activations as a bf16 pair: their hi parts, or (lo) what is left after the hi parts.
__device__ __forceinline__ uint32_t bf16_pair(float a, float b, bool lo) {
  __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  if (lo) {
    const float2 hf = __bfloat1622float2(h);
    h = __floats2bfloat162_rn(a - hf.x, b - hf.y);
  }
  uint32_t r;
  memcpy(&r, &h, 4);
  return r;
}

// The B fragments of one chunk for one n-tile: [step][register].
__device__ __forceinline__ void load_b(const float* xc, bool lo, uint32_t (&b)[2][2]) {
  const float4 x0 = __ldg(reinterpret_cast<const float4*>(xc));
  const float4 x1 = __ldg(reinterpret_cast<const float4*>(xc + 4));
  b[0][0] = bf16_pair(x0.x, x0.y, lo);
  b[0][1] = bf16_pair(x0.z, x0.w, lo);
  b[1][0] = bf16_pair(x1.x, x1.y, lo);
  b[1][1] = bf16_pair(x1.z, x1.w, lo);
}

// One chunk's two k16 steps for every n-tile.
template <int NT>
__device__ __forceinline__ void mma_chunk(float (&acc)[NT][4], const uint4& ra, const uint4& rb,
                                          const float* const (&xc)[NT], const bool (&lo)[NT], size_t offset) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    uint32_t b[2][2];
    load_b(xc[nt] + offset, lo[nt], b);
    mma_bf16(acc[nt], ra.x, rb.x, ra.y, rb.y, b[0][0], b[0][1]);
    mma_bf16(acc[nt], ra.z, rb.z, ra.w, rb.w, b[1][0], b[1][1]);
  }
}

template <int T, int kUnroll>
__global__ void __launch_bounds__(kWarps * 32, 2) GemvMmaKernel(const __nv_bfloat16* __restrict__ w, int rows, int cols,
                                                             int ks_n, const float* __restrict__ x, Segments out) {
  constexpr int NT = (2 * T + 7) / 8;  // n-tiles of 8 columns: T hi + T lo
  __shared__ float part[kWarps][NT][4][32];                 // each warp's partial D fragments
  __shared__ float tile_d[kWarps][kTileRows][8 * NT + 1];  // a tile's summed D, row-major (+1: no bank conflicts)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, q = lane & 3;
  const int tile = blockIdx.x * (kWarps / ks_n) + warp / ks_n, ks = warp % ks_n;
  const int row0 = tile * kTileRows;
  const bool live_tile = row0 < rows;
  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
  if (live_tile) {
    const int n_chunks = cols / 32, c_begin = ks * n_chunks / ks_n, c_end = (ks + 1) * n_chunks / ks_n;
    // Rows past the end read the last row again (their results are not stored).
    const __nv_bfloat16* wa = w + size_t(min(row0 + g, rows - 1)) * cols + 8 * q;
    const __nv_bfloat16* wb = w + size_t(min(row0 + g + 8, rows - 1)) * cols + 8 * q;
    // B column n: hi of x row n (n < T), lo of x row n - T (n < 2T). Columns from 2T on are never read back, so
    // their lanes load x row 0 like their neighbours instead of branching around the loads.
    const float* xn[NT];
    bool x_lo[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int n = nt * 8 + g;
      x_lo[nt] = n >= T && n < 2 * T;
      xn[nt] = x + size_t(n < T ? n : n < 2 * T ? n - T : 0) * cols + 8 * q;
    }
    // Two groups of kUnroll chunks in flight: the next group's loads are issued before this group is multiplied.
    const int c_full = c_begin + (c_end - c_begin) / kUnroll * kUnroll;
    uint4 ra[kUnroll], rb[kUnroll];
    if (c_begin < c_full) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        ra[u] = load_weights16(wa + size_t(c_begin + u) * 32);
        rb[u] = load_weights16(wb + size_t(c_begin + u) * 32);
      }
    }
    // The weights are nobody's output: their first loads go out before the previous kernel is done (launch.cuh).
    pdl_wait();
    pdl_trigger();
    for (int c = c_begin; c < c_full; c += kUnroll) {
      uint4 na[kUnroll], nb[kUnroll];
      if (c + kUnroll < c_full) {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          na[u] = load_weights16(wa + size_t(c + kUnroll + u) * 32);
          nb[u] = load_weights16(wb + size_t(c + kUnroll + u) * 32);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) mma_chunk<NT>(acc, ra[u], rb[u], xn, x_lo, size_t(c + u) * 32);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) ra[u] = na[u], rb[u] = nb[u];
    }
    for (int c = c_full; c < c_end; ++c)
      mma_chunk<NT>(acc, load_weights16(wa + size_t(c) * 32), load_weights16(wb + size_t(c) * 32), xn, x_lo,
                    size_t(c) * 32);
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) part[warp][nt][i][lane] = acc[nt][i];
  __syncthreads();
  if (ks != 0 || !live_tile) return;
  // The tile's first warp adds the KS partials in slice order and lays D out by row.
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float s = part[warp][nt][i][lane];
      for (int k = 1; k < ks_n; ++k) s += part[warp + k][nt][i][lane];
      tile_d[warp][g + (i >> 1) * 8][nt * 8 + 2 * q + (i & 1)] = s;
    }
  __syncwarp();
  for (int idx = lane; idx < kTileRows * T; idx += 32) {
    const int r = idx % kTileRows, t = idx / kTileRows, row = row0 + r;
    if (row >= rows) continue;
    const float y = tile_d[warp][r][t] + tile_d[warp][r][T + t];
    float* yg = out.y[0];
    int begin = 0, end = out.end[0];
#pragma unroll
    for (int s = 1; s < kMaxSegments; ++s)  // constant indices: the segments stay in parameter space
      if (s < out.n && row >= end) begin = end, end = out.end[s], yg = out.y[s];
    yg[size_t(t) * (end - begin) + row - begin] = y;
  }
}

// Warps per tile: the fewest (a power of two, up to a block) that still put 1024 warps to work, about half what
// the GPU holds of this kernel and far more loads in flight than HBM needs, so that each warp streams a long run of
// chunks and the grid fits in one wave: blocks that start, ramp up and drain over and over cost a small matrix
// 20 % of its bandwidth (12288 x 4096 at 8 warps per tile: 2.1 TB/s). At least 16 chunks per warp. A function of the
// shape alone, so that a row's result does not depend on T.
int warps_per_tile(int rows, int cols) {
  constexpr int kMinWarps = 1024;
  const int tiles = (rows + kTileRows - 1) / kTileRows, chunks = cols / 32;
  int ks = 1;
  while (ks < kWarps && tiles * ks < kMinWarps && chunks / (2 * ks) >= 16) ks *= 2;
  return ks;
}

}  // namespace

bool MmaApplies(WType wtype, int cols, const void* w, const float* x) {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess || major < 8)
    return false;
  return wtype == WType::BF16 && cols % 32 == 0 && (reinterpret_cast<uintptr_t>(w) & 15) == 0 &&
         (reinterpret_cast<uintptr_t>(x) & 15) == 0;
}

cudaError_t GemvMma(const void* w, int cols, const float* x, int T, const Segments& out, cudaStream_t stream) {
  const int rows = out.end[out.n - 1];
  const int ks = warps_per_tile(rows, cols);
  const int tiles = (rows + kTileRows - 1) / kTileRows, tiles_per_block = kWarps / ks;
  const dim3 grid((tiles + tiles_per_block - 1) / tiles_per_block), block(kWarps * 32);
  const auto* wp = static_cast<const __nv_bfloat16*>(w);
  DISPATCH_ROWS(T, TR, {
    constexpr int NT = (2 * TR + 7) / 8;
    const cudaError_t e = launch_pdl(GemvMmaKernel<TR, kUnrollFor<NT>>, grid, block, 0, stream, wp, rows, cols, ks, x, out);
    if (e != cudaSuccess) return e;
  })
  return cudaGetLastError();
}

}  // namespace imp::kernels::gemv
