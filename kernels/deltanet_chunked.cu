#include "deltanet_chunked.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "smem_limit.cuh"

#include <algorithm>

namespace imp::kernels::deltanet {

namespace {

constexpr int kPrepThreads = 256;
constexpr int kBV = 32;                                       // state columns per ChunkState block (one per lane)
constexpr int kStateWarps = 8;
constexpr int kRowsPerWarp = kChunk / kStateWarps;            // chunk rows per warp in the o / delta phases
constexpr int kMaxStateRowsPerWarp = kMaxChunkedDk / kStateWarps;  // state rows per warp in the update phase
static_assert(kChunk == 64, "the gate scan gives each lane of one warp two rows");

// The workspace, all head-major so that one chunk of one head is contiguous; dkp = dk rounded up to 8 (the
// state kernel reads rows as float4 and splits them over 8 warps; the pad columns are zero). Every array starts
// at a multiple of 4 floats.
struct Layout {
  int n_chunks = 0, Tp = 0, dkp = 0;  // Tp = n_chunks * kChunk
  size_t w = 0;      // (HV, Tp, dkp)       W = (I + A)^-1 diag(beta e^gc) K
  size_t u = 0;      // (HV, Tp, dv)        U = (I + A)^-1 diag(beta) V
  size_t q = 0;      // (HV, Tp, dkp)       e^{gc_i} q_i
  size_t kt = 0;     // (HV, n_chunks, dkp, kChunk)   (e^{gc_last - gc_i} k_i)^T
  size_t p = 0;      // (HV, n_chunks, kChunk, kChunk) P_im = e^{gc_i - gc_m} q_i.k_m for m <= i, else 0
  size_t eg = 0;     // (HV, n_chunks)      e^{gc_last}
  size_t total = 0;
};

size_t round4(size_t n) { return (n + 3) / 4 * 4; }

Layout make_layout(int T, Dims d) {
  Layout L;
  L.n_chunks = (std::max(T, 0) + kChunk - 1) / kChunk;
  L.Tp = L.n_chunks * kChunk;
  L.dkp = (d.dk + 7) / 8 * 8;
  const size_t hv = size_t(std::max(d.HV, 0)), rows = hv * L.Tp;
  size_t at = 0;
  L.w = at, at += round4(rows * L.dkp);
  L.u = at, at += round4(rows * std::max(d.dv, 0));
  L.q = at, at += round4(rows * L.dkp);
  L.kt = at, at += round4(rows * L.dkp);
  L.p = at, at += round4(rows * kChunk);
  L.eg = at, at += round4(hv * L.n_chunks);
  L.total = at;
  return L;
}

size_t prepare_smem_floats(Dims d) {
  return size_t(kChunk) * (d.dk + 1) + size_t(kChunk) * std::max(d.dk + 1, d.dv) + 2 * size_t(kChunk) * (kChunk + 1) +
         6 * size_t(kChunk);
}

size_t state_smem_floats(Dims d) {
  const size_t dkp = size_t(d.dk + 7) / 8 * 8;
  return dkp * kBV + 2 * size_t(kChunk) * dkp + size_t(kChunk) * kChunk + size_t(kChunk) * kBV;
}

// Grid (n_chunks, HV), kPrepThreads threads. Everything of chunk c, value head j that does not depend on the
// state, into the workspace.
__global__ void __launch_bounds__(kPrepThreads) ChunkPrepareKernel(const float* __restrict__ conv_out,
                                                                   const float* __restrict__ b,
                                                                   const float* __restrict__ a,
                                                                   const float* __restrict__ A,
                                                                   const float* __restrict__ dt_bias, int T, Dims dm,
                                                                   Layout L, float* __restrict__ work) {
  extern __shared__ float smem[];
  constexpr int CS = kChunk + 1;  // row stride of the (kChunk, kChunk) matrices
  const int c = blockIdx.x, j = blockIdx.y;
  const int dk = dm.dk, dv = dm.dv, HV = dm.HV, kh = dm.key_head(j), conv_dim = dm.conv_dim();
  const int c0 = c * kChunk, n = min(kChunk, T - c0);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = blockDim.x >> 5;
  const int ks = dk + 1;                   // odd for even dk: a warp reading one column of 32 rows hits 32 banks
  const int qvs = max(dk + 1, dv);
  float* Ks = smem;                        // (kChunk, ks)  normalised k
  float* QV = Ks + kChunk * ks;            // (kChunk, qvs) normalised, scaled q; later v
  float* Am = QV + kChunk * qvs;           // (kChunk, CS)  A, strictly lower
  float* Ti = Am + kChunk * CS;            // (kChunk, CS)  (I + A)^-1, unit lower
  float* gc = Ti + kChunk * CS;            // (kChunk)      g, then its inclusive cumulative sum
  float* beta = gc + kChunk;               // (kChunk)
  float* bg = beta + kChunk;               // (kChunk)      beta_i e^{gc_i}
  float* eq = bg + kChunk;                 // (kChunk)      e^{gc_i}
  float* ek = eq + kChunk;                 // (kChunk)      e^{gc_last - gc_i}

  // 1. q and k of the key head and the gates; rows past the batch are zeros with g = beta = 0, so they change
  //    nothing and gc stays at gc_last for them.
  for (int e = threadIdx.x; e < kChunk * dk; e += blockDim.x) {
    const int i = e / dk, s = e % dk;
    float qv = 0.0f, kv = 0.0f;
    if (i < n) {
      const float* row = conv_out + size_t(c0 + i) * conv_dim;
      qv = row[kh * dk + s];
      kv = row[dm.HK * dk + kh * dk + s];
    }
    QV[i * qvs + s] = qv;
    Ks[i * ks + s] = kv;
  }
  if (threadIdx.x < kChunk) {
    const int i = threadIdx.x;
    float g = 0.0f, bt = 0.0f;
    if (i < n) {
      const size_t r = size_t(c0 + i) * HV + j;
      g = A[j] * softplusf_(a[r] + dt_bias[j]);
      bt = sigmoidf_(b[r]);
    }
    gc[i] = g;
    beta[i] = bt;
  }
  __syncthreads();

  // 2. l2-normalise q and k per row (q also scaled by dk^-1/2, as Recurrent does); warp 0 scans the gates.
  const float q_scale = rsqrtf(float(dk));
  for (int i = warp; i < kChunk; i += n_warps) {
    float sq = 0.0f, sk = 0.0f;
    for (int s = lane; s < dk; s += 32) {
      const float qv = QV[i * qvs + s], kv = Ks[i * ks + s];
      sq += qv * qv;
      sk += kv * kv;
    }
    const float rq = 1.0f / sqrtf(warp_sum(sq) + 1e-6f) * q_scale;
    const float rk = 1.0f / sqrtf(warp_sum(sk) + 1e-6f);
    for (int s = lane; s < dk; s += 32) {
      QV[i * qvs + s] *= rq;
      Ks[i * ks + s] *= rk;
    }
  }
  if (warp == 0) {
    const float g0 = gc[2 * lane], g1 = gc[2 * lane + 1];
    float incl = g0 + g1;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const float t = __shfl_up_sync(kFullMask, incl, off);
      if (lane >= off) incl += t;
    }
    float excl = __shfl_up_sync(kFullMask, incl, 1);
    if (lane == 0) excl = 0.0f;
    const float c_even = excl + g0, c_odd = excl + g0 + g1;
    const float last = __shfl_sync(kFullMask, c_odd, 31);
    gc[2 * lane] = c_even;
    gc[2 * lane + 1] = c_odd;
    eq[2 * lane] = expf(c_even);
    eq[2 * lane + 1] = expf(c_odd);
    ek[2 * lane] = expf(last - c_even);
    ek[2 * lane + 1] = expf(last - c_odd);
    bg[2 * lane] = beta[2 * lane] * expf(c_even);
    bg[2 * lane + 1] = beta[2 * lane + 1] * expf(c_odd);
  }
  __syncthreads();

  // 3. A (strictly lower) and P (lower, diagonal included); P goes straight to the workspace.
  float* Pg = work + L.p + (size_t(j) * L.n_chunks + c) * kChunk * kChunk;
  for (int e = threadIdx.x; e < kChunk * kChunk; e += blockDim.x) {
    const int i = e / kChunk, m = e % kChunk;
    float a_im = 0.0f, p_im = 0.0f;
    if (m <= i && i < n) {
      const float* ki = Ks + i * ks;
      const float* km = Ks + m * ks;
      const float* qi = QV + i * qvs;
      float kk = 0.0f, qk = 0.0f;
      for (int s = 0; s < dk; ++s) {
        const float kms = km[s];
        kk += ki[s] * kms;
        qk += qi[s] * kms;
      }
      const float decay = expf(gc[i] - gc[m]);  // i >= m: exponent <= 0
      if (m < i) a_im = beta[i] * decay * kk;
      p_im = decay * qk;
    }
    Am[i * CS + m] = a_im;
    Pg[e] = p_im;
  }
  __syncthreads();

  // 4. The decayed q (rows) and k (transposed) for the state kernel, zero in the pad columns; meanwhile the
  //    first kChunk threads invert I + A by forward substitution, one column each (x_r = -sum_{col<=m<r} A_rm x_m).
  const int dkp = L.dkp;
  float* Qg = work + L.q + (size_t(j) * L.Tp + c0) * dkp;
  for (int e = threadIdx.x; e < kChunk * dkp; e += blockDim.x) {
    const int i = e / dkp, s = e % dkp;
    Qg[e] = s < dk ? QV[i * qvs + s] * eq[i] : 0.0f;
  }
  float* Kt = work + L.kt + (size_t(j) * L.n_chunks + c) * dkp * kChunk;
  for (int e = threadIdx.x; e < dkp * kChunk; e += blockDim.x) {
    const int s = e / kChunk, i = e % kChunk;
    Kt[e] = s < dk ? Ks[i * ks + s] * ek[i] : 0.0f;
  }
  if (threadIdx.x < kChunk) {
    const int col = threadIdx.x;
    for (int r = 0; r < kChunk; ++r) {
      float acc = 0.0f;
      for (int m = col; m < r; ++m) acc += Am[r * CS + m] * Ti[m * CS + col];
      Ti[r * CS + col] = r < col ? 0.0f : (r == col ? 1.0f : -acc);
    }
  }
  __syncthreads();  // q is no longer read: v takes its place

  for (int e = threadIdx.x; e < kChunk * dv; e += blockDim.x) {
    const int i = e / dv, dd = e % dv;
    QV[i * qvs + dd] = i < n ? conv_out[size_t(c0 + i) * conv_dim + 2 * dm.HK * dk + j * dv + dd] : 0.0f;
  }
  __syncthreads();

  // 5. W = Ti diag(beta e^gc) K and U = Ti diag(beta) V (Ti is lower: m <= i).
  float* Wg = work + L.w + (size_t(j) * L.Tp + c0) * dkp;
  for (int e = threadIdx.x; e < kChunk * dkp; e += blockDim.x) {
    const int i = e / dkp, s = e % dkp;
    float acc = 0.0f;
    if (s < dk)
      for (int m = 0; m <= i; ++m) acc += Ti[i * CS + m] * bg[m] * Ks[m * ks + s];
    Wg[e] = acc;
  }
  float* Ug = work + L.u + (size_t(j) * L.Tp + c0) * dv;
  for (int e = threadIdx.x; e < kChunk * dv; e += blockDim.x) {
    const int i = e / dv, dd = e % dv;
    float acc = 0.0f;
    for (int m = 0; m <= i; ++m) acc += Ti[i * CS + m] * beta[m] * QV[m * qvs + dd];
    Ug[e] = acc;
  }
  if (threadIdx.x == 0) work[L.eg + size_t(j) * L.n_chunks + c] = expf(gc[kChunk - 1]);
}

// dst[0..n) = src[0..n) by float4 (both 16-byte aligned, n a multiple of 4).
__device__ __forceinline__ void copy_f4(float* __restrict__ dst, const float* __restrict__ src, int n) {
  for (int e = threadIdx.x * 4; e < n; e += blockDim.x * 4)
    *reinterpret_cast<float4*>(dst + e) = *reinterpret_cast<const float4*>(src + e);
}

// Grid (HV, ceil(dv / kBV)), kStateWarps warps. Block (j, y) owns the state columns d0 .. d0+kBV-1 of value head j
// (lane = column) and walks the chunks in order.
__global__ void __launch_bounds__(kStateWarps * 32) ChunkStateKernel(int T, Dims dm, Layout L,
                                                                     const float* __restrict__ work,
                                                                     float* __restrict__ S_all, float* __restrict__ o) {
  extern __shared__ __align__(16) float smem_state[];
  const int j = blockIdx.x, d0 = blockIdx.y * kBV;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int dk = dm.dk, dv = dm.dv, HV = dm.HV, dkp = L.dkp;
  const int d = d0 + lane;
  const bool d_ok = d < dv;
  float* Ss = smem_state;             // (dkp, kBV)    the state columns, zero in the pad rows and columns
  float* WK = Ss + dkp * kBV;         // (kChunk, dkp) W, then (dkp, kChunk) the decayed k^T
  float* Qs = WK + kChunk * dkp;      // (kChunk, dkp) decayed q
  float* Ps = Qs + kChunk * dkp;      // (kChunk, kChunk)
  float* Ds = Ps + kChunk * kChunk;   // (kChunk, kBV) the chunk's deltas

  float* Sg = S_all + size_t(j) * dk * dv;
  for (int e = threadIdx.x; e < dkp * kBV; e += blockDim.x) {
    const int s = e / kBV, col = d0 + e % kBV;
    Ss[e] = s < dk && col < dv ? Sg[size_t(s) * dv + col] : 0.0f;
  }
  const int s_per_warp = dkp / kStateWarps;  // dkp is a multiple of 8

  for (int c = 0; c < L.n_chunks; ++c) {
    const int c0 = c * kChunk, n = min(kChunk, T - c0);
    copy_f4(WK, work + L.w + (size_t(j) * L.Tp + c0) * dkp, kChunk * dkp);
    copy_f4(Qs, work + L.q + (size_t(j) * L.Tp + c0) * dkp, kChunk * dkp);
    copy_f4(Ps, work + L.p + (size_t(j) * L.n_chunks + c) * kChunk * kChunk, kChunk * kChunk);
    __syncthreads();  // also orders the previous chunk's state update before these reads

    // Delta = U - W S0 and the inter-chunk part of o, e^gc q S0, for the warp's rows i = warp + 8 r.
    float acc_d[kRowsPerWarp], acc_o[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) acc_d[r] = acc_o[r] = 0.0f;
    for (int s = 0; s < dkp; s += 4) {
      const float s0 = Ss[s * kBV + lane], s1 = Ss[(s + 1) * kBV + lane], s2 = Ss[(s + 2) * kBV + lane],
                  s3 = Ss[(s + 3) * kBV + lane];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const int i = warp + r * kStateWarps;
        if (i >= n) continue;  // warp-uniform
        const float4 w4 = *reinterpret_cast<const float4*>(WK + i * dkp + s);
        const float4 q4 = *reinterpret_cast<const float4*>(Qs + i * dkp + s);
        acc_d[r] += w4.x * s0 + w4.y * s1 + w4.z * s2 + w4.w * s3;
        acc_o[r] += q4.x * s0 + q4.y * s1 + q4.z * s2 + q4.w * s3;
      }
    }
    const float* Ug = work + L.u + (size_t(j) * L.Tp + c0) * dv;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = warp + r * kStateWarps;
      Ds[i * kBV + lane] = i < n && d_ok ? Ug[size_t(i) * dv + d] - acc_d[r] : 0.0f;
    }
    __syncthreads();  // Ds complete; W no longer read

    copy_f4(WK, work + L.kt + (size_t(j) * L.n_chunks + c) * dkp * kChunk, dkp * kChunk);
    // o_i += sum_{m<=i} P_im delta_m (P is zero above the diagonal and Ds past row n).
    for (int m = 0; m < n; m += 4) {
      const float e0 = Ds[m * kBV + lane], e1 = Ds[(m + 1) * kBV + lane], e2 = Ds[(m + 2) * kBV + lane],
                  e3 = Ds[(m + 3) * kBV + lane];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const int i = warp + r * kStateWarps;
        if (i >= n) continue;
        const float4 p4 = *reinterpret_cast<const float4*>(Ps + i * kChunk + m);
        acc_o[r] += p4.x * e0 + p4.y * e1 + p4.z * e2 + p4.w * e3;
      }
    }
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int i = warp + r * kStateWarps;
      if (i < n && d_ok) o[(size_t(c0 + i) * HV + j) * dv + d] = acc_o[r];
    }
    __syncthreads();  // the decayed k^T is staged

    // S = e^{gc_last} S0 + (decayed K)^T Delta, for the warp's state rows s = warp + 8 q.
    const float decay = work[L.eg + size_t(j) * L.n_chunks + c];
    float acc_s[kMaxStateRowsPerWarp];
#pragma unroll
    for (int q = 0; q < kMaxStateRowsPerWarp; ++q)
      acc_s[q] = q < s_per_warp ? decay * Ss[(warp + q * kStateWarps) * kBV + lane] : 0.0f;
    for (int i = 0; i < n; i += 4) {
      const float e0 = Ds[i * kBV + lane], e1 = Ds[(i + 1) * kBV + lane], e2 = Ds[(i + 2) * kBV + lane],
                  e3 = Ds[(i + 3) * kBV + lane];
#pragma unroll
      for (int q = 0; q < kMaxStateRowsPerWarp; ++q) {
        if (q >= s_per_warp) break;
        const float4 k4 = *reinterpret_cast<const float4*>(WK + (warp + q * kStateWarps) * kChunk + i);
        acc_s[q] += k4.x * e0 + k4.y * e1 + k4.z * e2 + k4.w * e3;
      }
    }
#pragma unroll
    for (int q = 0; q < kMaxStateRowsPerWarp; ++q)
      if (q < s_per_warp) Ss[(warp + q * kStateWarps) * kBV + lane] = acc_s[q];
    __syncthreads();  // Ss, WK, Qs, Ps and Ds are rewritten by the next chunk
  }

  for (int e = threadIdx.x; e < dkp * kBV; e += blockDim.x) {
    const int s = e / kBV, col = d0 + e % kBV;
    if (s < dk && col < dv) Sg[size_t(s) * dv + col] = Ss[e];
  }
}

}  // namespace

size_t ChunkedWorkspaceFloats(int T, Dims d) { return make_layout(T, d).total; }

cudaError_t Chunked(const float* conv_out, const float* b, const float* a, const float* A, const float* dt_bias,
                    int T, Dims d, float* S, float* o, float* work, size_t work_floats, cudaStream_t stream) {
  if (d.HK <= 0 || d.HV % d.HK) IMP_DISPATCH_FAIL("linear value heads (not a multiple of key heads)", d.HV);
  if (d.dk <= 0 || d.dk > kMaxChunkedDk) IMP_DISPATCH_FAIL("linear_key_head_dim for the chunked DeltaNet (1..256)", d.dk);
  if (d.dv <= 0) IMP_DISPATCH_FAIL("linear_value_head_dim", d.dv);
  if (T <= 0) return cudaSuccess;
  const Layout L = make_layout(T, d);
  if (!work || work_floats < L.total) IMP_DISPATCH_FAIL("rows for the chunked DeltaNet workspace given", T);
  if (reinterpret_cast<uintptr_t>(work) % 16) IMP_DISPATCH_FAIL("chunked DeltaNet workspace alignment (bytes mod 16)",
                                                                reinterpret_cast<uintptr_t>(work) % 16);
  const size_t smem_prep = prepare_smem_floats(d) * sizeof(float), smem_state = state_smem_floats(d) * sizeof(float);
  cudaError_t e = allow_dynamic_smem(reinterpret_cast<const void*>(ChunkPrepareKernel), smem_prep,
                             "chunked DeltaNet shared memory in bytes (over the device limit)");
  if (e != cudaSuccess) return e;
  e = allow_dynamic_smem(reinterpret_cast<const void*>(ChunkStateKernel), smem_state,
                 "chunked DeltaNet shared memory in bytes (over the device limit)");
  if (e != cudaSuccess) return e;
  ChunkPrepareKernel<<<dim3(L.n_chunks, d.HV), kPrepThreads, smem_prep, stream>>>(conv_out, b, a, A, dt_bias, T, d, L,
                                                                                  work);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  ChunkStateKernel<<<dim3(d.HV, (d.dv + kBV - 1) / kBV), kStateWarps * 32, smem_state, stream>>>(T, d, L, work, S, o);
  return cudaGetLastError();
}

}  // namespace imp::kernels::deltanet
