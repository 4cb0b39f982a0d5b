// Gated DeltaNet, chunked form: the same result as deltanet::Recurrent (deltanet.cuh) for long prefills, with the
// rows processed kChunk at a time instead of one at a time. Same inputs, outputs and gating math:
//   per value head j (key head j / r), q, k = l2norm(conv_out q/k of the key head), q *= dk^-1/2,
//   beta = sigmoid(b), g = A[j] * softplus(a + dt_bias[j]); S (dk, dv) fp32 is read at the start and left as the
//   recurrence leaves it after row T-1 (decode continues from it). No per-row states: a keep_row_states forward
//   (speculative verify) uses Recurrent.
//
// The math (the WY / UT form of the delta rule). Within a chunk of n <= kChunk rows with local index i, let
// gc_i = g_0 + ... + g_i (inclusive cumulative gate) and S0 the state at the chunk's start. Unrolling
//   S_i = e^{g_i} S_{i-1} + k_i delta_i^T,  delta_i = beta_i (v_i - e^{g_i} S_{i-1}^T k_i)
// gives S_i = e^{gc_i} S0 + sum_{m<=i} e^{gc_i - gc_m} k_m delta_m^T, and the deltas solve a unit lower-triangular
// system (I + A) Delta = diag(beta) V - diag(beta e^{gc}) K S0 with A_im = beta_i e^{gc_i - gc_m} k_i.k_m (m < i):
//   Delta = U - W S0,   U = (I + A)^-1 diag(beta) V,   W = (I + A)^-1 diag(beta e^{gc}) K
//   o_i   = e^{gc_i} S0^T q_i + sum_{m<=i} e^{gc_i - gc_m} (q_i.k_m) delta_m
//   S     = e^{gc_last} S0 + sum_m e^{gc_last - gc_m} k_m delta_m^T
// Every exponent is a difference gc_i - gc_m with i >= m, so it is <= 0 for g <= 0 (no overflow).
//
// Two kernels: ChunkPrepare (grid n_chunks x HV, all chunks in parallel) computes everything that does not depend
// on the state (A, (I + A)^-1 by forward substitution, W, U, the decayed q and k, the masked q.k matrix P) into a
// workspace; ChunkState (grid HV x ceil(dv / 32)) walks the chunks in order, each block owning 32 columns of S
// (the columns of S evolve independently), and writes o and the final S. fp32 throughout; against the recurrence
// the relative error is about 1e-6 (a float emulation at dk = dv = 8..128, T <= 256, g in [-3, 0]).
//
//   conv_out: (T, conv_dim); b, a: (T, HV); A, dt_bias: (HV); S: (HV, dk, dv) in/out; o: (T, HV, dv)
//   work:     ChunkedWorkspaceFloats(T, d) floats of device memory (16-byte aligned), contents scratch
// Supported: any T >= 0, HV a multiple of HK, 1 <= dk <= kMaxChunkedDk, dv >= 1 (shared memory: about
// 4 * (2 * 64 * dk + 96 * dk + ...) bytes per block, checked against the device's opt-in limit).
#ifndef IMP_KERNELS_DELTANET_CHUNKED_CUH_
#define IMP_KERNELS_DELTANET_CHUNKED_CUH_

#include "common.cuh"
#include "deltanet.cuh"

#include <cstddef>

namespace imp::kernels::deltanet {

constexpr int kChunk = 64;          // rows per chunk
constexpr int kMaxChunkedDk = 256;  // key head dim limit (per-thread state registers of the state kernel)

// Floats of workspace Chunked needs for T rows.
size_t ChunkedWorkspaceFloats(int T, Dims d);

cudaError_t Chunked(const float* conv_out, const float* b, const float* a, const float* A, const float* dt_bias,
                    int T, Dims d, float* S, float* o, float* work, size_t work_floats, cudaStream_t stream);

}  // namespace imp::kernels::deltanet

#endif  // IMP_KERNELS_DELTANET_CHUNKED_CUH_
