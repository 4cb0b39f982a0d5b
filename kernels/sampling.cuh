// Sampling family: greedy selection on the device.
//
//   Argmax: out (n_rows) int32 = index of the largest logit of each row of logits (n_rows, n_vocab), the lowest
//           index among equal maxima (as std::max_element). One block per row, cub::BlockReduce.
//
// The engine samples on the host today (ForwardPass returns logits); this is the first piece of moving greedy
// decoding onto the device so that only token ids cross the bus.
#ifndef IMP_KERNELS_SAMPLING_CUH_
#define IMP_KERNELS_SAMPLING_CUH_

#include "common.cuh"

namespace imp::kernels::sampling {

cudaError_t Argmax(const float* logits, int n_rows, int n_vocab, int32_t* out, cudaStream_t stream);

}  // namespace imp::kernels::sampling

#endif  // IMP_KERNELS_SAMPLING_CUH_
