// MoE family, grouped by expert: the routed experts of a long batch with each expert's weights read once per group
// of up to 8 of its rows, instead of once per (token, slot) pair as ExpertSwiGLU / ExpertDown (moe.cuh) do. Same
// inputs and outputs as those two (slot s = t*k + i, e = idx[s]), so TopK before and Combine after are unchanged.
//
//   GroupByExpert: idx (n_slots) -> offsets (E + 1): expert e's slots are sorted[offsets[e] .. offsets[e+1]),
//                  in increasing slot order (deterministic). One block; no host synchronisation: the grouped
//                  kernels below are launched over all E experts and read the counts on the device.
//                  An index outside 0..E-1 (never from TopK) is dropped: its slot's output is left unwritten.
//   GroupedSwiGLU: act (n_slots, Fe) = silu(gate_e x_t) * up_e x_t for every slot s, t = s / k;
//                  gate/up: per-expert device pointer tables (E) to (Fe, H) matrices; x: (T, H)
//   GroupedDown:   out (n_slots, H) = down_e act_s; down: pointer table (E) to (H, Fe) matrices
//
// Grid (ceil(rows / 16), E) of 8 warps: each warp computes 2 output rows of the expert's matrix for 8 of the
// expert's slots at a time (16-byte weight loads as in gemv.cuh when the activations are 16-byte aligned and the
// row length a multiple of the vector width, scalar loads otherwise). A slot's result does not depend on which
// other slots share its group. Experts no row chose cost an empty block.
#ifndef IMP_KERNELS_MOE_GROUPED_CUH_
#define IMP_KERNELS_MOE_GROUPED_CUH_

#include "common.cuh"

namespace imp::kernels::moe {

cudaError_t GroupByExpert(const int32_t* idx, int n_slots, int E, int32_t* offsets, int32_t* sorted,
                          cudaStream_t stream);

cudaError_t GroupedSwiGLU(const void* const* gate, const void* const* up, WType wtype, int Fe, int H, const float* x,
                          int k, const int32_t* offsets, const int32_t* sorted, int E, float* act, cudaStream_t stream);

cudaError_t GroupedDown(const void* const* down, WType wtype, int H, int Fe, const float* act, const int32_t* offsets,
                        const int32_t* sorted, int E, float* out, cudaStream_t stream);

}  // namespace imp::kernels::moe

#endif  // IMP_KERNELS_MOE_GROUPED_CUH_
