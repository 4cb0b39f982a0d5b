// Gated DeltaNet family: the linear-attention mixer's sequence part, T rows in order.
//
//   Unfuse (Qwen3-Next): qkvz (T, HK*(2dk + 2r dv)) grouped per key head g as [q_g | k_g | v_g (r dv) | z_g (r dv)]
//       and ba (T, HK*2r) as [b_g (r) | a_g (r)]  ->  mixed (T, conv_dim) = [q_all | k_all | v_all], z (T, HV dv),
//       b, a (T, HV); r = HV / HK
//   ConvUpdate: per channel c of mixed (T, conv_dim), window = [state (K-1, conv_dim) oldest first | rows]:
//       out[t][c] = silu(sum_k taps[c][k] * window[t + k]); taps (conv_dim, K), tap K-1 on the newest input.
//       The state is advanced to the last K-1 inputs. row_conv, if not null, receives the window before the batch
//       and after each row: (T+1, K-1, conv_dim), slot 0 the window before.
//   Recurrent: per value head j (key head j / r), per row t in order, S (dk, dv) fp32:
//       q, k = l2norm(conv_out q/k of key head), q *= dk^-1/2; beta = sigmoid(b); g = A[j] * softplus(a + dt_bias[j])
//       S = exp(g) S;  u = S^T k;  S += k (beta (v - u))^T;  o = S^T q
//       conv_out: (T, conv_dim); b, a: (T, HV); A, dt_bias: (HV); S: (HV, dk, dv) in/out; o: (T, HV, dv);
//       row_S, if not null, receives S before the batch and after each row: (T+1, HV, dk, dv), slot 0 the state
//       before (written by the kernel, so that a verify batch needs no copy of its own for a rollback).
//       One block per value head; S lives in shared memory (dk*dv*4 bytes, up to the device's opt-in limit), each
//       thread owns one column d of S. Long prefills that keep no per-row states take the chunked (WY) form
//       instead (deltanet_chunked.cuh).
#ifndef IMP_KERNELS_DELTANET_CUH_
#define IMP_KERNELS_DELTANET_CUH_

#include "common.cuh"

namespace imp::kernels::deltanet {

struct Dims {
  int HK = 0, HV = 0, dk = 0, dv = 0, K = 4;
  // Value head j reads key head j / (HV/HK) (Hugging Face order) or, with tiled, j % HK (llama.cpp's Qwen3.5
  // GGUFs reorder the value heads "grouped -> tiled"; model/weights.h DeltaNetWeights::v_heads_tiled).
  bool tiled = false;
  IMP_HOST_DEVICE int conv_dim() const { return 2 * HK * dk + HV * dv; }
  IMP_HOST_DEVICE int key_head(int j) const { return tiled ? j % HK : j / (HV / HK); }
};

cudaError_t Unfuse(const float* qkvz, const float* ba, int T, Dims d, float* mixed, float* z, float* b, float* a,
                   cudaStream_t stream);

cudaError_t ConvUpdate(const float* mixed, const float* taps, int T, Dims d, float* state, float* out,
                       float* row_conv, cudaStream_t stream);

cudaError_t Recurrent(const float* conv_out, const float* b, const float* a, const float* A, const float* dt_bias,
                      int T, Dims d, float* S, float* o, float* row_S, cudaStream_t stream);

}  // namespace imp::kernels::deltanet

#endif  // IMP_KERNELS_DELTANET_CUH_
