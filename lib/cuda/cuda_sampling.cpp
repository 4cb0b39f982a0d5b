// Sampling at temperature > 0 on the device (ForwardBatch::verify_sample, MtpBatch::draft_sample): the CUDA
// backend's side of kernels/sampling.cuh. A draft step keeps its distribution q in a slot of samp_q_ and draws its
// token; a verify batch turns its rows' logits into the target distributions and runs Engine::verify's
// accept/reject loop; plain sampled decoding is a verify of no drafts. Only ids (and, if asked, q(token)) cross the
// bus. Batches of at most kGraphMaxRows rows replay CUDA graphs (cuda_graphs.cpp records enqueue_draft_sample /
// enqueue_verify_sample with the draws and drafts in its StepInputs); others run these eagerly.
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

int32_t* CudaForward::sampled_token_dev() { return reinterpret_cast<int32_t*>(samp_io_.as<char>() + kTokenAt); }
int32_t* CudaForward::verdict_dev() { return reinterpret_cast<int32_t*>(samp_io_.as<char>() + kResultAt); }

void CudaForward::enqueue_draft_sample(const SampleParams& p, int slot, int vocab_limit, const double* uniform_dev,
                                       int32_t* token_dev) {
  const int V = c_.n_vocab;
  if (slot < 0 || slot >= kDeviceSampleMaxRows - 1) fail(IMP_ERR_INTERNAL, "draft sample slot ", slot, " out of range");
  const int Vl = vocab_limit > 0 && vocab_limit < V ? vocab_limit : V;
  float* q = samp_q_.as() + size_t(slot) * V;
  // q is zero outside the draft vocabulary, as the host path's resize(V, 0) makes it.
  if (Vl < V) check(cudaMemsetAsync(q + Vl, 0, sizeof(float) * (V - Vl), stream_), "clearing q");
  check(k::sampling::Distribution(logits_.as(), 1, Vl, Vl, kernel_params(p), samp_work_.as(), samp_work_.bytes(), q, V,
                                  stream_),
        "draft distribution");
  check(k::sampling::Draw(q, 1, V, V, uniform_dev, token_dev, stream_), "drawing a draft");
}

void CudaForward::enqueue_verify_sample(const SampleParams& p, int T, const int32_t* drafts_dev,
                                        const double* uniforms_dev, int32_t* result_dev) {
  const int V = c_.n_vocab;
  check(k::sampling::Distribution(logits_.as(), T, V, V, kernel_params(p), samp_work_.as(), samp_work_.bytes(),
                                  samp_p_.as(), V, stream_),
        "target distributions");
  check(k::sampling::SpeculativeAccept(samp_p_.as(), V, samp_q_.as(), V, drafts_dev, T - 1, V, uniforms_dev, result_dev,
                                       stream_),
        "speculative acceptance");
}

void CudaForward::sample_draft(const DraftSample& ds, int vocab_limit) {
  if (!ds.token) fail(IMP_ERR_INTERNAL, "draft sample without a token");
  ensure_sampling_buffers();
  char* io = samp_io_.as<char>();
  check(cudaMemcpyAsync(io + kUniformsAt, &ds.uniform, sizeof(double), cudaMemcpyHostToDevice, stream_), "copying a draw");
  enqueue_draft_sample(ds.params, ds.slot, vocab_limit, reinterpret_cast<const double*>(io + kUniformsAt),
                       sampled_token_dev());
  check(cudaMemcpyAsync(ds.token, sampled_token_dev(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
        "copying a draft");
}

void CudaForward::finish_draft_sample(const DraftSample& ds) {
  if (!ds.prob) return;
  const int V = c_.n_vocab;
  if (*ds.token < 0 || *ds.token >= V) fail(IMP_ERR_INTERNAL, "drawn draft ", *ds.token, " out of range");
  check(cudaMemcpy(ds.prob, samp_q_.as() + size_t(ds.slot) * V + *ds.token, sizeof(float), cudaMemcpyDeviceToHost),
        "copying q(draft)");
}

void CudaForward::sample_verify(const VerifySample& vs, int T) {
  const int n = vs.n_drafts;
  if (n < 0 || n + 1 != T || T > kDeviceSampleMaxRows || !vs.uniforms || !vs.result || (n && !vs.drafts))
    fail(IMP_ERR_INTERNAL, "verify sample of ", n, " drafts over ", T, " rows");
  ensure_sampling_buffers();
  char* io = samp_io_.as<char>();
  check(cudaMemcpyAsync(io + kUniformsAt, vs.uniforms, sizeof(double) * (n + 1), cudaMemcpyHostToDevice, stream_),
        "copying draws");
  if (n)
    check(cudaMemcpyAsync(io + kDraftsAt, vs.drafts, sizeof(int32_t) * n, cudaMemcpyHostToDevice, stream_),
          "copying drafts");
  enqueue_verify_sample(vs.params, T, reinterpret_cast<const int32_t*>(io + kDraftsAt),
                        reinterpret_cast<const double*>(io + kUniformsAt), verdict_dev());
  check(cudaMemcpyAsync(vs.result, verdict_dev(), sizeof(int32_t) * 3, cudaMemcpyDeviceToHost, stream_),
        "copying the verdict");
}

}  // namespace imp::cuda
