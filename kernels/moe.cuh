// MoE family: routing and the routed experts of a sparse FFN, reading only the chosen experts' weights.
//
//   TopK:         router logits (T, E) -> p = softmax (fp32); the k largest (ties to the lower index);
//                 idx (T, k) int32, weight (T, k) = p, renormalised to sum 1 when norm_topk. One block per row.
//   ExpertSwiGLU: act (T*k, Fe) = silu(gate_e x_t) * up_e x_t for slot s = t*k + i, e = idx[s];
//                 gate/up: per-expert device pointer tables (E) to (Fe, H) matrices; x: (T, H)
//   ExpertDown:   out (T*k, H) = down_e act_s; down: pointer table (E) to (H, Fe) matrices
//   Combine:      y (T, H) = sum_i weight[t,i] * out[t*k+i] + (shared ? sigmoid(shared_gate[t]) * shared[t] : 0)
//                 shared: (T, H) the shared expert's SwiGLU output or null; shared_gate: (T) its gate logit
//
// The expert kernels use one warp per output row with 16-byte weight loads (gemv.cuh's scheme); each (token,
// slot) pair reads its expert's rows, so an expert chosen by several rows of one batch is read once per row.
// That is the right cost for decode and verify; long prefills group the slots by expert instead (moe_grouped.cuh).
// Quantized expert matrices (WType Q8_0, Q4_K, Q5_K, Q6_K) go to quant_gemv::ExpertSwiGLU / ExpertDown.
#ifndef IMP_KERNELS_MOE_CUH_
#define IMP_KERNELS_MOE_CUH_

#include "common.cuh"

namespace imp::kernels::moe {

cudaError_t TopK(const float* logits, int T, int E, int k, bool norm_topk, int32_t* idx, float* weight,
                 cudaStream_t stream);

cudaError_t ExpertSwiGLU(const void* const* gate, const void* const* up, WType wtype, int Fe, int H,
                         const float* x, const int32_t* idx, int T, int k, float* act, cudaStream_t stream);

cudaError_t ExpertDown(const void* const* down, WType wtype, int H, int Fe, const float* act, const int32_t* idx,
                       int n_slots, float* out, cudaStream_t stream);

cudaError_t Combine(const float* out, const float* weight, const float* shared, const float* shared_gate, int T,
                    int k, int H, float* y, cudaStream_t stream);

}  // namespace imp::kernels::moe

#endif  // IMP_KERNELS_MOE_CUH_
