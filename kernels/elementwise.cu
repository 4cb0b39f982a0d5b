#include "elementwise.cuh"

#include "device_utils.cuh"
#include "dispatch.cuh"
#include "launch.cuh"
#include "quant_gemv.cuh"

#include <algorithm>
#include <type_traits>

namespace imp::kernels::elementwise {

namespace {

template <typename W>
__global__ void EmbedKernel(const W* __restrict__ table, int H, const int32_t* __restrict__ tokens,
                            float* __restrict__ out) {
  const W* row = table + size_t(tokens[blockIdx.x]) * H;
  float* o = out + size_t(blockIdx.x) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) o[i] = to_float(row[i]);
}

__global__ void SiluMulKernel(float* __restrict__ g, const float* __restrict__ u, size_t n) {
  pdl_wait();  // launched with launch_pdl: g and u are the previous kernel's output
  pdl_trigger();
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    g[i] = siluf_(g[i]) * u[i];
}

__global__ void GatherRowsKernel(const float* __restrict__ src, const int32_t* __restrict__ rows, int n,
                                 float* __restrict__ dst) {
  const float* s = src + size_t(rows[blockIdx.x]) * n;
  float* d = dst + size_t(blockIdx.x) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) d[i] = s[i];
}

template <typename W>
__global__ void ConvertKernel(const float* __restrict__ x, size_t n, W* __restrict__ hi, W* __restrict__ lo) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<W, __half>) {
      const __half h = __float2half_rn(x[i]);
      hi[i] = h;
      if (lo) lo[i] = __float2half_rn(x[i] - __half2float(h));
    } else {
      const __nv_bfloat16 h = __float2bfloat16_rn(x[i]);
      hi[i] = h;
      if (lo) lo[i] = __float2bfloat16_rn(x[i] - __bfloat162float(h));
    }
  }
}

unsigned grid_for(size_t n) { return unsigned(std::min<size_t>((n + 255) / 256, 4096)); }

// Grid (x: chunks of a span, y: span); float4 where the span's pointers and size allow it.
__global__ void CopySlotsKernel(const CopySpan* __restrict__ spans, int slot) {
  const CopySpan sp = spans[blockIdx.y];
  const float* src = sp.src + size_t(slot) * sp.n;
  const size_t stride = size_t(gridDim.x) * blockDim.x, first = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (((reinterpret_cast<uintptr_t>(sp.dst) | reinterpret_cast<uintptr_t>(src)) & 15) == 0 && sp.n % 4 == 0) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(sp.dst);
    for (size_t i = first; i < sp.n / 4; i += stride) d4[i] = s4[i];
  } else {
    for (size_t i = first; i < sp.n; i += stride) sp.dst[i] = src[i];
  }
}

}  // namespace

cudaError_t Embed(const void* table, WType wtype, int H, const int32_t* tokens, int T, float* out,
                  cudaStream_t stream) {
  if (T <= 0 || H <= 0) IMP_DISPATCH_FAIL("Embed shape (T or H <= 0)", T <= 0 ? T : H);
  if (wtype_is_quantized(wtype)) return quant_gemv::EmbedRows(table, wtype, H, tokens, T, out, stream);
  DISPATCH_WTYPE(wtype, W, { EmbedKernel<W><<<T, 256, 0, stream>>>(static_cast<const W*>(table), H, tokens, out); })
  return cudaGetLastError();
}

cudaError_t SiluMul(float* g, const float* u, size_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return launch_pdl(SiluMulKernel, grid_for(n), 256, 0, stream, g, u, n);
}

cudaError_t GatherRows(const float* src, const int32_t* rows, int n_rows, int n, float* dst, cudaStream_t stream) {
  if (n_rows <= 0) return cudaSuccess;
  GatherRowsKernel<<<n_rows, 256, 0, stream>>>(src, rows, n, dst);
  return cudaGetLastError();
}

cudaError_t ConvertF32(const float* x, size_t n, WType to, void* hi, void* lo, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (to) {
    case WType::F16:
      ConvertKernel<__half><<<grid_for(n), 256, 0, stream>>>(x, n, static_cast<__half*>(hi), static_cast<__half*>(lo));
      break;
    case WType::BF16:
      ConvertKernel<__nv_bfloat16><<<grid_for(n), 256, 0, stream>>>(x, n, static_cast<__nv_bfloat16*>(hi),
                                                                    static_cast<__nv_bfloat16*>(lo));
      break;
    default: IMP_DISPATCH_FAIL("conversion target type (F16 or BF16)", int(to));
  }
  return cudaGetLastError();
}

cudaError_t CopySlots(const CopySpan* spans, int n_spans, size_t max_n, int slot, cudaStream_t stream) {
  if (n_spans <= 0 || max_n == 0) return cudaSuccess;
  if (n_spans > 65535) IMP_DISPATCH_FAIL("CopySlots spans (at most 65535)", n_spans);
  const unsigned chunks = unsigned(std::min<size_t>((max_n / 4 + 255) / 256, 256));
  CopySlotsKernel<<<dim3(std::max(chunks, 1u), unsigned(n_spans)), 256, 0, stream>>>(spans, slot);
  return cudaGetLastError();
}

}  // namespace imp::kernels::elementwise
