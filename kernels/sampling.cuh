// Sampling family: token selection on the device, greedy and sampled, speculative sampling's accept/reject
// included, each the device twin of the host code named below (lib/engine/sampler.cpp, engine.cpp).
//
//   Argmax:            out (n_rows) int32 = index of the largest logit of each row of logits (n_rows, n_vocab),
//                      the lowest index among equal maxima (as std::max_element). One block per row.
//   Distribution:      probs (n_rows, ld_probs) = Sampler::distribution of each row of logits (n_rows,
//                      ld_logits), first n_vocab columns (columns past n_vocab are neither read nor written):
//                      the tempered softmax in double, then top-k (renormalised over the top k), top-p (the
//                      smallest prefix of the descending order whose running sum reaches top_p, at least one
//                      token), min-p (p >= min_p * p_max), ties to the lower id; float probs that sum to 1 over
//                      the kept set and are exactly 0 outside it. With no filter on (top_k <= 0 or >= n_vocab,
//                      top_p >= 1, min_p <= 0) it is the softmax alone; otherwise the rows are sorted by
//                      (logit descending, id ascending) with cub::DeviceRadixSort and one block per row walks
//                      the sorted prefix. work: DistributionWorkBytes(n_rows, n_vocab) bytes of device scratch.
//   Draw:              out (n_rows) int32 = Sampler::draw of each row of probs (n_rows, ld) with uniforms[row]
//                      (n_rows doubles in [0, 1)): the first id whose running sum of positive probs exceeds
//                      u * sum(probs), else the last positive id, else 0. One block per row.
//   SpeculativeAccept: Engine::verify's loop for temperature > 0. p (n_drafts + 1, ldp): the target
//                      distributions (Distribution rows), p[j] for draft j and p[n_drafts] for the bonus token;
//                      q (n_drafts, ldq): the draft distributions (zero outside the draft vocabulary); drafts
//                      (n_drafts) int32; uniforms (n_drafts + 1 doubles): the host Rng's next values, in order.
//                      Draft j is accepted iff p[j][d] > 0 && u_j * q[j][d] < p[j][d] (u_j = uniforms[j]); at
//                      the first rejection the next token is drawn from max(p[j] - q[j], 0) (float), or from
//                      p[j] when that residual is all zero, with uniforms[j + 1]; when all are accepted, the bonus
//                      token is drawn from p[n_drafts] with uniforms[n_drafts]. result (3) int32 = {n_accepted,
//                      next_token, uniforms used}. A draft id outside [0, n_vocab) counts as rejected. One block.
//
// All of it stays on the device and is capturable in a CUDA graph: no allocation, no host synchronisation (the
// scratch is the caller's `work`), so the engine can keep logits on the GPU and copy back three ints per step.
// Arithmetic follows the host code operation for operation (double where it uses double, the residual in float,
// no FMA contraction); only the order of the long sums differs (parallel trees instead of one running sum). So
// probs equal the host's to a few ulps, and a kept set or a drawn id differs only where a value falls within
// ~1e-16 (relative) of a threshold. Logits must not be NaN and each row needs a finite maximum (as on the host,
// where either gives NaN probs). probs must not overlap logits.
#ifndef IMP_KERNELS_SAMPLING_CUH_
#define IMP_KERNELS_SAMPLING_CUH_

#include "common.cuh"

namespace imp::kernels::sampling {

cudaError_t Argmax(const float* logits, int n_rows, int n_vocab, int32_t* out, cudaStream_t stream);

// imp::SamplingParams without the seed; temperature > 0 (greedy sampling is Argmax).
struct Params {
  float temperature;
  int top_k;    // <= 0 or >= n_vocab: off
  float top_p;  // >= 1: off
  float min_p;  // <= 0: off
};

// Scratch bytes Distribution needs for (n_rows, n_vocab), whatever the Params (the sort's buffers and CUB's temp
// storage, ~24 bytes per logit); a buffer sized for (R, V) also serves fewer rows. Asks CUB for its temp size on
// the current device: 0 when that fails (no device) or the shape is invalid.
size_t DistributionWorkBytes(int n_rows, int n_vocab);

cudaError_t Distribution(const float* logits, int n_rows, int n_vocab, int ld_logits, Params p, void* work,
                         size_t work_bytes, float* probs, int ld_probs, cudaStream_t stream);

cudaError_t Draw(const float* probs, int n_rows, int n_vocab, int ld, const double* uniforms, int32_t* out,
                 cudaStream_t stream);

cudaError_t SpeculativeAccept(const float* p, int ldp, const float* q, int ldq, const int32_t* drafts, int n_drafts,
                              int n_vocab, const double* uniforms, int32_t* result, cudaStream_t stream);

}  // namespace imp::kernels::sampling

#endif  // IMP_KERNELS_SAMPLING_CUH_
