// Every DISPATCH_* macro of the kernels: each turns a run-time value into a compile-time constant for the body
// and, for a value it has no case for, records "Unsupported <what>: <value>" (see last_error_detail()) and makes
// the enclosing launcher return cudaErrorInvalidValue. Launchers only (host code returning cudaError_t).
#ifndef IMP_KERNELS_DISPATCH_CUH_
#define IMP_KERNELS_DISPATCH_CUH_

#include "common.cuh"

#include <cstdio>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define IMP_DISPATCH_FAIL(what, value)                                       \
  do {                                                                       \
    char imp_dispatch_msg_[128];                                             \
    std::snprintf(imp_dispatch_msg_, sizeof imp_dispatch_msg_,               \
                  "Unsupported %s: %d", what, int(value));                   \
    ::imp::kernels::set_error_detail(imp_dispatch_msg_);                     \
    return cudaErrorInvalidValue;                                            \
  } while (0)

// Float WType -> the element type W (float, __half, __nv_bfloat16). The quantized types fail here: their
// kernels are in quant_gemv.cuh (DISPATCH_QTYPE below).
#define DISPATCH_WTYPE(wtype, W, ...)                                        \
  switch (wtype) {                                                           \
    case ::imp::kernels::WType::F32: { using W = float; __VA_ARGS__ break; }           \
    case ::imp::kernels::WType::F16: { using W = __half; __VA_ARGS__ break; }          \
    case ::imp::kernels::WType::BF16: { using W = __nv_bfloat16; __VA_ARGS__ break; }  \
    default: IMP_DISPATCH_FAIL("weight type", int(wtype));                   \
  }

// Quantized WType -> its block format F (quant_blocks.cuh, which the CUDA source using this must include).
#define DISPATCH_QTYPE(wtype, F, ...)                                        \
  switch (wtype) {                                                           \
    case ::imp::kernels::WType::Q8_0: { using F = ::imp::kernels::quant::BlockQ8_0; __VA_ARGS__ break; } \
    case ::imp::kernels::WType::Q4_K: { using F = ::imp::kernels::quant::BlockQ4_K; __VA_ARGS__ break; } \
    case ::imp::kernels::WType::Q5_K: { using F = ::imp::kernels::quant::BlockQ5_K; __VA_ARGS__ break; } \
    case ::imp::kernels::WType::Q6_K: { using F = ::imp::kernels::quant::BlockQ6_K; __VA_ARGS__ break; } \
    default: IMP_DISPATCH_FAIL("quantized weight type", int(wtype));         \
  }

// Activation rows of a GEMV batch, 1..16 -> constexpr int T.
#define IMP_ROWS_CASE(n, T, ...) case n: { constexpr int T = n; __VA_ARGS__ break; }
#define DISPATCH_ROWS(rows, T, ...)                                          \
  switch (rows) {                                                            \
    IMP_ROWS_CASE(1, T, __VA_ARGS__) IMP_ROWS_CASE(2, T, __VA_ARGS__)        \
    IMP_ROWS_CASE(3, T, __VA_ARGS__) IMP_ROWS_CASE(4, T, __VA_ARGS__)        \
    IMP_ROWS_CASE(5, T, __VA_ARGS__) IMP_ROWS_CASE(6, T, __VA_ARGS__)        \
    IMP_ROWS_CASE(7, T, __VA_ARGS__) IMP_ROWS_CASE(8, T, __VA_ARGS__)        \
    IMP_ROWS_CASE(9, T, __VA_ARGS__) IMP_ROWS_CASE(10, T, __VA_ARGS__)       \
    IMP_ROWS_CASE(11, T, __VA_ARGS__) IMP_ROWS_CASE(12, T, __VA_ARGS__)      \
    IMP_ROWS_CASE(13, T, __VA_ARGS__) IMP_ROWS_CASE(14, T, __VA_ARGS__)      \
    IMP_ROWS_CASE(15, T, __VA_ARGS__) IMP_ROWS_CASE(16, T, __VA_ARGS__)      \
    default: IMP_DISPATCH_FAIL("GEMV rows (1..16)", rows);                   \
  }

// Attention head dimension -> constexpr int HD.
#define DISPATCH_HEAD_DIM(head_dim, HD, ...)                                 \
  switch (head_dim) {                                                        \
    case 16: { constexpr int HD = 16; __VA_ARGS__ break; }                   \
    case 32: { constexpr int HD = 32; __VA_ARGS__ break; }                   \
    case 64: { constexpr int HD = 64; __VA_ARGS__ break; }                   \
    case 128: { constexpr int HD = 128; __VA_ARGS__ break; }                 \
    case 256: { constexpr int HD = 256; __VA_ARGS__ break; }                 \
    default: IMP_DISPATCH_FAIL("head_dim", head_dim);                        \
  }

// Gated DeltaNet causal conv width -> constexpr int K.
#define DISPATCH_CONV_KERNEL(kernel, K, ...)                                 \
  switch (kernel) {                                                          \
    case 2: { constexpr int K = 2; __VA_ARGS__ break; }                      \
    case 3: { constexpr int K = 3; __VA_ARGS__ break; }                      \
    case 4: { constexpr int K = 4; __VA_ARGS__ break; }                      \
    default: IMP_DISPATCH_FAIL("linear_conv_kernel_dim", kernel);            \
  }

#endif  // IMP_KERNELS_DISPATCH_CUH_
