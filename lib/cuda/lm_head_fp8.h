// The FP8 E4M3 copy of a model's lm_head (the embedding when tied), one fp32 scale per row, for the MTP draft head
// (MtpBatch::low_precision_head): the draft step's cost is mostly the lm_head read, and E4M3 halves it against
// BF16. It costs V*H + 4*V bytes of device memory on top of the weights, so it is built only on first request
// (kernels/gemv_fp8.cuh: QuantiseRows), then shared by every forward pass of the same device weights and freed
// with the last one that holds it.
#pragma once

#include "cuda/device_weights.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

namespace imp::cuda {

struct Fp8Mat {
  ~Fp8Mat();
  Fp8Mat() = default;
  Fp8Mat(const Fp8Mat&) = delete;
  Fp8Mat& operator=(const Fp8Mat&) = delete;

  int device = 0;
  void* arena = nullptr;          // the one device allocation below
  const uint8_t* q = nullptr;     // (rows, cols) E4M3 bits
  const float* scales = nullptr;  // (rows) dequantised W[r][c] = scales[r] * E4M3(q[r][c])
  int rows = 0, cols = 0;
};

// The FP8 copy of w's lm_head, quantised on `stream` (synchronised before returning) the first time any forward
// pass asks for it. Thread-safe. Throws imp::Error: IMP_ERR_UNSUPPORTED when the head is not F32/F16/BF16,
// IMP_ERR_BACKEND on a CUDA failure (out of memory included).
std::shared_ptr<const Fp8Mat> lm_head_fp8(const std::shared_ptr<const DeviceWeights>& w, cudaStream_t stream);

}  // namespace imp::cuda
