#include "rope.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"

namespace imp::kernels::rope {

namespace {

constexpr int kMaxHeadDim = 512;

__global__ void QkNormRopeKernel(QkNormRopeParams p) {
  __shared__ float buf[kMaxHeadDim];
  const int t = blockIdx.x, head = blockIdx.y, hd = p.head_dim, pos = p.pos0 + (p.pos0_dev ? *p.pos0_dev : 0) + t;
  const bool is_q = head < p.n_head;
  const int kvh = head - p.n_head;
  const float* src = is_q ? p.qg + (size_t(t) * p.n_head + head) * 2 * hd : p.k + (size_t(t) * p.n_head_kv + kvh) * hd;
  const float* scale = is_q ? p.q_norm : p.k_norm;
  float* dst = is_q ? p.q + (size_t(t) * p.n_head + head) * hd : p.k_cache + (size_t(pos) * p.n_head_kv + kvh) * hd;

  float ss = 0.0f;
  for (int i = threadIdx.x; i < hd; i += blockDim.x) ss += src[i] * src[i];
  const float r = rsqrtf(block_sum(ss) / float(hd) + p.eps);
  for (int i = threadIdx.x; i < hd; i += blockDim.x) buf[i] = src[i] * r * scale[i];
  __syncthreads();
  const int half = p.n_rot / 2;
  for (int i = threadIdx.x; i < hd; i += blockDim.x) {
    float out = buf[i];
    if (i < p.n_rot) {
      const int j = i < half ? i : i - half;
      float s, c;
      sincosf(float(pos) * p.inv_freq[j], &s, &c);
      const float x1 = buf[j], x2 = buf[j + half];
      out = i < half ? x1 * c - x2 * s : x2 * c + x1 * s;
    }
    dst[i] = out;
  }
  if (!is_q) {
    const float* vs = p.v + (size_t(t) * p.n_head_kv + kvh) * hd;
    float* vd = p.v_cache + (size_t(pos) * p.n_head_kv + kvh) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) vd[i] = vs[i];
  }
}

}  // namespace

cudaError_t QkNormRopeKvWrite(const QkNormRopeParams& p, cudaStream_t stream) {
  if (p.head_dim <= 0 || p.head_dim > kMaxHeadDim) IMP_DISPATCH_FAIL("head_dim for RoPE (1..512)", p.head_dim);
  if (p.n_rot < 0 || p.n_rot > p.head_dim || p.n_rot % 2) IMP_DISPATCH_FAIL("n_rot", p.n_rot);
  if (p.T <= 0) return cudaSuccess;
  const dim3 grid(p.T, p.n_head + p.n_head_kv);
  const int threads = p.head_dim >= 128 ? 128 : p.head_dim > 32 ? 64 : 32;
  QkNormRopeKernel<<<grid, threads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace imp::kernels::rope
