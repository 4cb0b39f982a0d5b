// Sampling at temperature > 0 on the device (ForwardBatch::verify_sample, MtpBatch::draft_sample): the CUDA
// backend's side of kernels/sampling.cuh. A draft step keeps its distribution q in a slot of samp_q_ and draws its
// token; a verify batch turns its rows' logits into the target distributions and runs Engine::verify's
// accept/reject loop; plain sampled decoding is a verify of no drafts. Only ids (and, if asked, q(token)) cross the
// bus. The batches run eagerly (no CUDA graph yet).
#include "cuda/cuda_forward.h"

#include "sampling.cuh"

namespace imp::cuda {

namespace k = kernels;

namespace {
// samp_io_: uniforms (kDeviceSampleMaxRows doubles), then drafts (kDeviceSampleMaxRows int32), result (4 int32),
// token (1 int32).
constexpr size_t kUniformsAt = 0;
constexpr size_t kDraftsAt = kUniformsAt + sizeof(double) * kDeviceSampleMaxRows;
constexpr size_t kResultAt = kDraftsAt + sizeof(int32_t) * kDeviceSampleMaxRows;
constexpr size_t kTokenAt = kResultAt + sizeof(int32_t) * 4;
constexpr size_t kIoBytes = kTokenAt + sizeof(int32_t);

k::sampling::Params kernel_params(const SampleParams& p) {
  k::sampling::Params q;
  q.temperature = p.temperature;
  q.top_k = p.top_k;
  q.top_p = p.top_p;
  q.min_p = p.min_p;
  return q;
}
}  // namespace

void CudaForward::ensure_sampling_buffers() {
  if (samp_io_.bytes()) return;
  const int V = c_.n_vocab;
  const size_t work = k::sampling::DistributionWorkBytes(kDeviceSampleMaxRows, V);
  if (!work) fail(IMP_ERR_BACKEND, "sampling on the device: no scratch size for ", V, " logits per row");
  samp_work_ = DevBuf(work);
  samp_p_ = DevBuf(sizeof(float) * kDeviceSampleMaxRows * size_t(V));
  samp_q_ = DevBuf(sizeof(float) * kDeviceSampleMaxRows * size_t(V));
  samp_io_ = DevBuf(kIoBytes);
}

void CudaForward::sample_draft(const DraftSample& ds, int vocab_limit) {
  const int V = c_.n_vocab;
  if (ds.slot < 0 || ds.slot >= kDeviceSampleMaxRows - 1 || !ds.token)
    fail(IMP_ERR_INTERNAL, "draft sample slot ", ds.slot, " out of range");
  ensure_sampling_buffers();
  const int Vl = vocab_limit > 0 && vocab_limit < V ? vocab_limit : V;
  float* q = samp_q_.as() + size_t(ds.slot) * V;
  char* io = samp_io_.as<char>();
  // q is zero outside the draft vocabulary, as the host path's resize(V, 0) makes it.
  if (Vl < V) check(cudaMemsetAsync(q + Vl, 0, sizeof(float) * (V - Vl), stream_), "clearing q");
  check(k::sampling::Distribution(logits_.as(), 1, Vl, Vl, kernel_params(ds.params), samp_work_.as(), samp_work_.bytes(),
                                  q, V, stream_),
        "draft distribution");
  check(cudaMemcpyAsync(io + kUniformsAt, &ds.uniform, sizeof(double), cudaMemcpyHostToDevice, stream_), "copying a draw");
  check(k::sampling::Draw(q, 1, V, V, reinterpret_cast<const double*>(io + kUniformsAt),
                          reinterpret_cast<int32_t*>(io + kTokenAt), stream_),
        "drawing a draft");
  check(cudaMemcpyAsync(ds.token, io + kTokenAt, sizeof(int32_t), cudaMemcpyDeviceToHost, stream_), "copying a draft");
}

void CudaForward::finish_draft_sample(const DraftSample& ds) {
  if (!ds.prob) return;
  const int V = c_.n_vocab;
  if (*ds.token < 0 || *ds.token >= V) fail(IMP_ERR_INTERNAL, "drawn draft ", *ds.token, " out of range");
  check(cudaMemcpy(ds.prob, samp_q_.as() + size_t(ds.slot) * V + *ds.token, sizeof(float), cudaMemcpyDeviceToHost),
        "copying q(draft)");
}

void CudaForward::sample_verify(const VerifySample& vs, int T) {
  const int V = c_.n_vocab, n = vs.n_drafts;
  if (n < 0 || n + 1 != T || T > kDeviceSampleMaxRows || !vs.uniforms || !vs.result || (n && !vs.drafts))
    fail(IMP_ERR_INTERNAL, "verify sample of ", n, " drafts over ", T, " rows");
  ensure_sampling_buffers();
  char* io = samp_io_.as<char>();
  check(k::sampling::Distribution(logits_.as(), T, V, V, kernel_params(vs.params), samp_work_.as(), samp_work_.bytes(),
                                  samp_p_.as(), V, stream_),
        "target distributions");
  check(cudaMemcpyAsync(io + kUniformsAt, vs.uniforms, sizeof(double) * (n + 1), cudaMemcpyHostToDevice, stream_),
        "copying draws");
  if (n)
    check(cudaMemcpyAsync(io + kDraftsAt, vs.drafts, sizeof(int32_t) * n, cudaMemcpyHostToDevice, stream_),
          "copying drafts");
  check(k::sampling::SpeculativeAccept(samp_p_.as(), V, samp_q_.as(), V, reinterpret_cast<const int32_t*>(io + kDraftsAt),
                                       n, V, reinterpret_cast<const double*>(io + kUniformsAt),
                                       reinterpret_cast<int32_t*>(io + kResultAt), stream_),
        "speculative acceptance");
  check(cudaMemcpyAsync(vs.result, io + kResultAt, sizeof(int32_t) * 3, cudaMemcpyDeviceToHost, stream_),
        "copying the verdict");
}

}  // namespace imp::cuda
