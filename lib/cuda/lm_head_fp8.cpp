// Building and sharing the FP8 copy of the lm_head: a registry keyed by the device weights (compared by owner, so
// a freed DeviceWeights never matches a new one at the same address), holding each copy weakly.
#include "cuda/lm_head_fp8.h"

#include "cuda/check.h"

#include "gemv_fp8.cuh"

#include <map>
#include <mutex>

namespace imp::cuda {

Fp8Mat::~Fp8Mat() {
  if (arena) {
    cudaSetDevice(device);
    cudaFree(arena);
  }
}

namespace {

std::shared_ptr<const Fp8Mat> build(const DeviceWeights& w, cudaStream_t stream) {
  const DMat& head = w.lm_head;
  if (head.wtype != kernels::WType::F32 && head.wtype != kernels::WType::F16 && head.wtype != kernels::WType::BF16)
    fail(IMP_ERR_UNSUPPORTED, "the FP8 draft head is quantised from an F32, F16 or BF16 lm_head");
  auto m = std::make_shared<Fp8Mat>();
  m->device = w.device;
  m->rows = head.rows;
  m->cols = head.cols;
  const size_t q_bytes = (size_t(head.rows) * head.cols + 255) / 256 * 256;  // keeps the scales 256-byte aligned
  check(cudaMalloc(&m->arena, q_bytes + sizeof(float) * head.rows), "cudaMalloc of the FP8 draft head");
  uint8_t* q = static_cast<uint8_t*>(m->arena);
  float* scales = reinterpret_cast<float*>(q + q_bytes);
  check(kernels::gemv_fp8::QuantiseRows(head.data, head.wtype, head.rows, head.cols, q, scales, stream),
        "quantising the lm_head to FP8");
  check(cudaStreamSynchronize(stream), "quantising the lm_head to FP8");
  m->q = q;
  m->scales = scales;
  return m;
}

}  // namespace

std::shared_ptr<const Fp8Mat> lm_head_fp8(const std::shared_ptr<const DeviceWeights>& w, cudaStream_t stream) {
  static std::mutex mu;
  static std::map<std::weak_ptr<const DeviceWeights>, std::weak_ptr<const Fp8Mat>,
                  std::owner_less<std::weak_ptr<const DeviceWeights>>>
      cache;
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = cache.begin(); it != cache.end();)  // entries of freed weights or freed copies
    it = it->first.expired() || it->second.expired() ? cache.erase(it) : std::next(it);
  auto& slot = cache[w];
  if (auto sp = slot.lock()) return sp;
  auto sp = build(*w, stream);
  slot = sp;
  return sp;
}

}  // namespace imp::cuda
