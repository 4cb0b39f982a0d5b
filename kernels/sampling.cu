#include "sampling.cuh"

#include "dispatch.cuh"

#include <cub/block/block_reduce.cuh>

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

}  // namespace

cudaError_t Argmax(const float* logits, int n_rows, int n_vocab, int32_t* out, cudaStream_t stream) {
  if (n_vocab <= 0) IMP_DISPATCH_FAIL("n_vocab", n_vocab);
  if (n_rows <= 0) return cudaSuccess;
  ArgmaxKernel<<<n_rows, kThreads, 0, stream>>>(logits, n_vocab, out);
  return cudaGetLastError();
}

}  // namespace imp::kernels::sampling
