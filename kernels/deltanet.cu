#include "deltanet.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

#include <algorithm>

namespace imp::kernels::deltanet {

namespace {

// One thread per source element of qkvz, then of ba.
__global__ void UnfuseKernel(const float* __restrict__ qkvz, const float* __restrict__ ba, int T, Dims d,
                             float* __restrict__ mixed, float* __restrict__ z, float* __restrict__ b,
                             float* __restrict__ a) {
  const int r = d.HV / d.HK, group = 2 * d.dk + 2 * r * d.dv, width = d.HK * group, conv_dim = d.conv_dim();
  const size_t n_qkvz = size_t(T) * width, n_ba = size_t(T) * 2 * d.HV;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n_qkvz + n_ba; i += size_t(gridDim.x) * blockDim.x) {
    if (i < n_qkvz) {
      const int t = int(i / width), idx = int(i % width), g = idx / group, off = idx % group;
      const float v = qkvz[i];
      float* m = mixed + size_t(t) * conv_dim;
      if (off < d.dk) m[g * d.dk + off] = v;
      else if (off < 2 * d.dk) m[d.HK * d.dk + g * d.dk + off - d.dk] = v;
      else if (off < 2 * d.dk + r * d.dv) m[2 * d.HK * d.dk + g * r * d.dv + off - 2 * d.dk] = v;
      else z[size_t(t) * d.HV * d.dv + g * r * d.dv + off - 2 * d.dk - r * d.dv] = v;
    } else {
      const size_t e = i - n_qkvz;
      const int t = int(e / (2 * d.HV)), idx = int(e % (2 * d.HV)), g = idx / (2 * r), off = idx % (2 * r);
      const float v = ba[e];
      if (off < r) b[size_t(t) * d.HV + g * r + off] = v;
      else a[size_t(t) * d.HV + g * r + off - r] = v;
    }
  }
}

template <int K>
__global__ void ConvUpdateKernel(const float* __restrict__ mixed, const float* __restrict__ taps, int T, int conv_dim,
                                 float* __restrict__ state, float* __restrict__ out, float* __restrict__ row_conv) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= conv_dim) return;
  float win[K], tap[K];
#pragma unroll
  for (int k = 0; k < K; ++k) tap[k] = taps[size_t(ch) * K + k];
#pragma unroll
  for (int i = 0; i < K - 1; ++i) win[i] = state[size_t(i) * conv_dim + ch];
  if (row_conv) {  // slot 0: the window before the batch
#pragma unroll
    for (int i = 0; i < K - 1; ++i) row_conv[size_t(i) * conv_dim + ch] = win[i];
  }
  for (int t = 0; t < T; ++t) {
    win[K - 1] = mixed[size_t(t) * conv_dim + ch];
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < K; ++k) s += tap[k] * win[k];
    out[size_t(t) * conv_dim + ch] = siluf_(s);
#pragma unroll
    for (int i = 0; i < K - 1; ++i) win[i] = win[i + 1];
    if (row_conv) {
#pragma unroll
      for (int i = 0; i < K - 1; ++i) row_conv[(size_t(t + 1) * (K - 1) + i) * conv_dim + ch] = win[i];
    }
  }
#pragma unroll
  for (int i = 0; i < K - 1; ++i) state[size_t(i) * conv_dim + ch] = win[i];
}

// Grid HV, block >= dv threads (a multiple of 32). Dynamic shared memory: S (dk*dv) + q (dk) + k (dk) floats.
__global__ void RecurrentKernel(const float* __restrict__ conv_out, const float* __restrict__ b,
                                const float* __restrict__ a, const float* __restrict__ A,
                                const float* __restrict__ dt_bias, int T, Dims dm, float* __restrict__ S_all,
                                float* __restrict__ o, float* __restrict__ row_S) {
  extern __shared__ float smem[];
  const int j = blockIdx.x, dk = dm.dk, dv = dm.dv, HV = dm.HV, kh = dm.key_head(j), conv_dim = dm.conv_dim();
  float* S = smem;
  float* q = S + size_t(dk) * dv;
  float* k = q + dk;
  float* Sg = S_all + size_t(j) * dk * dv;
  for (int i = threadIdx.x; i < dk * dv; i += blockDim.x) S[i] = Sg[i];
  if (row_S)  // slot 0: the state before the batch
    for (int i = threadIdx.x; i < dk * dv; i += blockDim.x) row_S[size_t(j) * dk * dv + i] = S[i];
  const float q_scale = rsqrtf(float(dk));
  const int d = threadIdx.x;
  for (int t = 0; t < T; ++t) {
    const float* row = conv_out + size_t(t) * conv_dim;
    float sq = 0.0f, sk = 0.0f;
    for (int i = threadIdx.x; i < dk; i += blockDim.x) {
      const float qi = row[kh * dk + i], ki = row[dm.HK * dk + kh * dk + i];
      q[i] = qi;
      k[i] = ki;
      sq += qi * qi;
      sk += ki * ki;
    }
    const float rq = 1.0f / sqrtf(block_sum(sq) + 1e-6f) * q_scale;  // block_sum syncs: q, k are visible after
    const float rk = 1.0f / sqrtf(block_sum(sk) + 1e-6f);
    const float beta = sigmoidf_(b[size_t(t) * HV + j]);
    const float decay = expf(A[j] * softplusf_(a[size_t(t) * HV + j] + dt_bias[j]));
    if (d < dv) {
      const float v = row[2 * dm.HK * dk + j * dv + d];
      float u = 0.0f;
      for (int i = 0; i < dk; ++i) {
        const float s = S[i * dv + d] * decay;
        S[i * dv + d] = s;
        u += s * (k[i] * rk);
      }
      const float delta = beta * (v - u);
      float acc = 0.0f;
      float* rs = row_S ? row_S + (size_t(t + 1) * HV + j) * dk * dv : nullptr;
      for (int i = 0; i < dk; ++i) {
        const float s = S[i * dv + d] + (k[i] * rk) * delta;
        S[i * dv + d] = s;
        acc += s * (q[i] * rq);
        if (rs) rs[i * dv + d] = s;
      }
      o[(size_t(t) * HV + j) * dv + d] = acc;
    }
    __syncthreads();  // q, k are rewritten by the next row
  }
  for (int i = threadIdx.x; i < dk * dv; i += blockDim.x) Sg[i] = S[i];
}

// The same recurrence with the state in registers, spread over more of the GPU: grid (HV, ceil(dv/32)), block of
// 4 warps. Lane l is value column d = 32*blockIdx.y + l; warp w holds rows [w*R, (w+1)*R) of that column of S
// (R = dk/4) in registers, so the state is read from and written to global memory once per call with coalesced
// 128-byte rows, and the HV*dv/32 blocks stream the 64 KiB-per-head states in parallel (the one-block-per-head
// kernel above leaves most SMs idle and spends a decode step's time loading S). u = S^T k and o = S^T q are summed
// over the four warps' partials in a fixed order, so a row's result does not depend on T: a verify row equals the
// same row decoded alone.
template <int R>
__global__ void __launch_bounds__(128) RecurrentColumnsKernel(const float* __restrict__ conv_out,
                                                              const float* __restrict__ b, const float* __restrict__ a,
                                                              const float* __restrict__ A,
                                                              const float* __restrict__ dt_bias, int T, Dims dm,
                                                              float* __restrict__ S_all, float* __restrict__ o,
                                                              float* __restrict__ row_S) {
  constexpr int DK = 4 * R;
  __shared__ float qk[2][2][DK];  // [row parity][q, k][i]
  __shared__ float norms[4][2];   // per-warp partial |q|^2, |k|^2
  __shared__ float part[2][4][32];  // per-warp partial u, o of each column
  const int j = blockIdx.x, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int dv = dm.dv, HV = dm.HV, kh = dm.key_head(j), conv_dim = dm.conv_dim();
  const int d = blockIdx.y * 32 + lane;
  const bool live = d < dv;
  float* Sg = S_all + size_t(j) * DK * dv;
  float s[R];
#pragma unroll
  for (int r = 0; r < R; ++r) s[r] = live ? Sg[size_t(w * R + r) * dv + d] : 0.0f;
  if (row_S && live) {  // slot 0: the state before the batch
#pragma unroll
    for (int r = 0; r < R; ++r) row_S[size_t(j) * DK * dv + size_t(w * R + r) * dv + d] = s[r];
  }
  const float q_scale = rsqrtf(float(DK));
  for (int t = 0; t < T; ++t) {
    const int p = t & 1;
    const float* row = conv_out + size_t(t) * conv_dim;
    float sq = 0.0f, sk = 0.0f;
    for (int i = threadIdx.x; i < DK; i += 128) {
      const float qi = row[kh * DK + i], ki = row[dm.HK * DK + kh * DK + i];
      qk[p][0][i] = qi;
      qk[p][1][i] = ki;
      sq += qi * qi;
      sk += ki * ki;
    }
    sq = warp_sum(sq);
    sk = warp_sum(sk);
    if (lane == 0) norms[w][0] = sq, norms[w][1] = sk;
    __syncthreads();
    const float rq = 1.0f / sqrtf(norms[0][0] + norms[1][0] + norms[2][0] + norms[3][0] + 1e-6f) * q_scale;
    const float rk = 1.0f / sqrtf(norms[0][1] + norms[1][1] + norms[2][1] + norms[3][1] + 1e-6f);
    const float beta = sigmoidf_(b[size_t(t) * HV + j]);
    const float decay = expf(A[j] * softplusf_(a[size_t(t) * HV + j] + dt_bias[j]));
    float u = 0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      s[r] *= decay;
      u += s[r] * (qk[p][1][w * R + r] * rk);
    }
    part[0][w][lane] = u;
    __syncthreads();
    u = part[0][0][lane] + part[0][1][lane] + part[0][2][lane] + part[0][3][lane];
    const float v = live ? row[2 * dm.HK * DK + j * dv + d] : 0.0f;
    const float delta = beta * (v - u);
    float acc = 0.0f;
    float* rs = row_S && live ? row_S + (size_t(t + 1) * HV + j) * DK * dv : nullptr;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      s[r] += (qk[p][1][w * R + r] * rk) * delta;
      acc += s[r] * (qk[p][0][w * R + r] * rq);
      if (rs) rs[size_t(w * R + r) * dv + d] = s[r];
    }
    part[1][w][lane] = acc;
    __syncthreads();
    if (w == 0 && live) o[(size_t(t) * HV + j) * dv + d] = part[1][0][lane] + part[1][1][lane] + part[1][2][lane] + part[1][3][lane];
  }
  if (live) {
#pragma unroll
    for (int r = 0; r < R; ++r) Sg[size_t(w * R + r) * dv + d] = s[r];
  }
}

}  // namespace

cudaError_t Unfuse(const float* qkvz, const float* ba, int T, Dims d, float* mixed, float* z, float* b, float* a,
                   cudaStream_t stream) {
  if (d.HK <= 0 || d.HV % d.HK) IMP_DISPATCH_FAIL("linear value heads (not a multiple of key heads)", d.HV);
  if (T <= 0) return cudaSuccess;
  const size_t n = size_t(T) * (d.HK * (2 * d.dk + 2 * (d.HV / d.HK) * d.dv) + 2 * d.HV);
  UnfuseKernel<<<unsigned(std::min<size_t>((n + 255) / 256, 4096)), 256, 0, stream>>>(qkvz, ba, T, d, mixed, z, b, a);
  return cudaGetLastError();
}

cudaError_t ConvUpdate(const float* mixed, const float* taps, int T, Dims d, float* state, float* out,
                       float* row_conv, cudaStream_t stream) {
  if (T <= 0) return cudaSuccess;
  const int conv_dim = d.conv_dim();
  DISPATCH_CONV_KERNEL(d.K, K, {
    ConvUpdateKernel<K><<<(conv_dim + 127) / 128, 128, 0, stream>>>(mixed, taps, T, conv_dim, state, out, row_conv);
  })
  return cudaGetLastError();
}

cudaError_t Recurrent(const float* conv_out, const float* b, const float* a, const float* A, const float* dt_bias,
                      int T, Dims d, float* S, float* o, float* row_S, cudaStream_t stream) {
  if (d.HK <= 0 || d.HV % d.HK) IMP_DISPATCH_FAIL("linear value heads (not a multiple of key heads)", d.HV);
  if (d.dv <= 0 || d.dv > 1024) IMP_DISPATCH_FAIL("linear_value_head_dim (1..1024)", d.dv);
  if (T <= 0) return cudaSuccess;
  if (d.dk % 4 == 0) {
    const dim3 grid(d.HV, (d.dv + 31) / 32);
    switch (d.dk / 4) {
      case 4: RecurrentColumnsKernel<4><<<grid, 128, 0, stream>>>(conv_out, b, a, A, dt_bias, T, d, S, o, row_S); return cudaGetLastError();
      case 8: RecurrentColumnsKernel<8><<<grid, 128, 0, stream>>>(conv_out, b, a, A, dt_bias, T, d, S, o, row_S); return cudaGetLastError();
      case 16: RecurrentColumnsKernel<16><<<grid, 128, 0, stream>>>(conv_out, b, a, A, dt_bias, T, d, S, o, row_S); return cudaGetLastError();
      case 32: RecurrentColumnsKernel<32><<<grid, 128, 0, stream>>>(conv_out, b, a, A, dt_bias, T, d, S, o, row_S); return cudaGetLastError();
      case 64: RecurrentColumnsKernel<64><<<grid, 128, 0, stream>>>(conv_out, b, a, A, dt_bias, T, d, S, o, row_S); return cudaGetLastError();
      default: break;  // other key head sizes: the shared-memory kernel
    }
  }
  const size_t smem = (size_t(d.dk) * d.dv + 2 * d.dk) * sizeof(float);
  int device = 0, max_optin = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e != cudaSuccess) return e;
  e = cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return e;
  if (smem > size_t(max_optin)) IMP_DISPATCH_FAIL("Gated DeltaNet state size in bytes (over the shared-memory limit)", smem);
  if (smem > 48 * 1024) {
    e = cudaFuncSetAttribute(RecurrentKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
    if (e != cudaSuccess) return e;
  }
  const int threads = (std::max(d.dv, 32) + 31) / 32 * 32;
  RecurrentKernel<<<d.HV, threads, smem, stream>>>(conv_out, b, a, A, dt_bias, T, d, S, o, row_S);
  return cudaGetLastError();
}

}  // namespace imp::kernels::deltanet
