// CUDA and cuBLAS status -> imp::Error(IMP_ERR_BACKEND, "<what>: <error string>"), with the kernels' detail
// ("Unsupported head_dim: 48") when a launcher refused a shape.
#pragma once

#include "common.cuh"
#include "core/error.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

namespace imp::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::string msg = std::string(what) + ": " + cudaGetErrorString(e);
  const char* detail = kernels::last_error_detail();
  if (detail && *detail) {
    msg += std::string(" (") + detail + ")";
    kernels::clear_error_detail();
  }
  throw Error(IMP_ERR_BACKEND, msg);
}

inline void check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw Error(IMP_ERR_BACKEND, std::string(what) + ": " + cublasGetStatusString(s));
}

}  // namespace imp::cuda
