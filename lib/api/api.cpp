// The C ABI of include/imp/imp.h: versions, errors, models, contexts, prefill and decode.
#include "api/guard.h"
#include "api/handles.h"
#if IMP_WITH_CUDA
#include "cuda/cuda_device.h"
#endif

#include <algorithm>
#include <cstring>
#include <vector>

using imp::fail;
using imp::guard;
using imp::require;

#ifndef IMP_VERSION_STRING
#define IMP_VERSION_STRING "0.0.0"
#endif

extern "C" {

const char* imp_version(void) { return IMP_VERSION_STRING; }
int32_t imp_abi_version(void) { return IMP_ABI_VERSION; }
const char* imp_last_error(void) { return imp::last_error(); }

const char* imp_status_name(imp_status status) {
  switch (imp::enum_bits(status)) {
    case IMP_OK: return "IMP_OK";
    case IMP_ERR_INVALID_ARGUMENT: return "IMP_ERR_INVALID_ARGUMENT";
    case IMP_ERR_NULL_ARGUMENT: return "IMP_ERR_NULL_ARGUMENT";
    case IMP_ERR_OUT_OF_MEMORY: return "IMP_ERR_OUT_OF_MEMORY";
    case IMP_ERR_IO: return "IMP_ERR_IO";
    case IMP_ERR_NOT_FOUND: return "IMP_ERR_NOT_FOUND";
    case IMP_ERR_MISSING_CONFIG: return "IMP_ERR_MISSING_CONFIG";
    case IMP_ERR_BAD_JSON: return "IMP_ERR_BAD_JSON";
    case IMP_ERR_UNKNOWN_ARCH: return "IMP_ERR_UNKNOWN_ARCH";
    case IMP_ERR_BAD_CONFIG: return "IMP_ERR_BAD_CONFIG";
    case IMP_ERR_BAD_HEADER: return "IMP_ERR_BAD_HEADER";
    case IMP_ERR_BAD_OFFSETS: return "IMP_ERR_BAD_OFFSETS";
    case IMP_ERR_MISSING_TENSOR: return "IMP_ERR_MISSING_TENSOR";
    case IMP_ERR_TENSOR_SHAPE: return "IMP_ERR_TENSOR_SHAPE";
    case IMP_ERR_TENSOR_DTYPE: return "IMP_ERR_TENSOR_DTYPE";
    case IMP_ERR_TOKEN_OUT_OF_RANGE: return "IMP_ERR_TOKEN_OUT_OF_RANGE";
    case IMP_ERR_CONTEXT_FULL: return "IMP_ERR_CONTEXT_FULL";
    case IMP_ERR_BUFFER_TOO_SMALL: return "IMP_ERR_BUFFER_TOO_SMALL";
    case IMP_ERR_UNSUPPORTED: return "IMP_ERR_UNSUPPORTED";
    case IMP_ERR_BAD_STATE: return "IMP_ERR_BAD_STATE";
    case IMP_ERR_BACKEND: return "IMP_ERR_BACKEND";
    case IMP_ERR_TOKENIZER: return "IMP_ERR_TOKENIZER";
    case IMP_ERR_INTERNAL: return "IMP_ERR_INTERNAL";
  }
  return "IMP_ERR_UNKNOWN";
}

/* ---------------------------------------------------------------------------------------------------------- */

imp_model_params imp_model_default_params(void) {
  imp_model_params p;
  std::memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.backend = IMP_BACKEND_CPU;
  p.device = 0;
  return p;
}

imp_status imp_model_load(imp_model** out, const char* path, const imp_model_params* params) {
  if (out) *out = nullptr;
  return guard([&] {
    require(out, "out");
    require(path, "path");
    const imp_model_params p =
        imp::read_params(params, imp_model_default_params(), "imp_model_params", "imp_model_default_params");
    if (p.backend != IMP_BACKEND_AUTO && p.backend != IMP_BACKEND_CPU && p.backend != IMP_BACKEND_CUDA)
      fail(IMP_ERR_INVALID_ARGUMENT, "unknown backend ", p.backend);
#if IMP_WITH_CUDA
    // AUTO: CUDA when a device is present, else the CPU. The CPU backend never touches the CUDA runtime.
    const bool have_device = p.backend != IMP_BACKEND_CPU && imp::cuda_device_available();
    if (p.backend == IMP_BACKEND_CUDA && !have_device)
      fail(IMP_ERR_BACKEND, "IMP_BACKEND_CUDA: no CUDA device (the CUDA runtime finds no GPU or driver)");
    const bool use_cuda = p.backend == IMP_BACKEND_CUDA || (p.backend == IMP_BACKEND_AUTO && have_device);
#else
    if (p.backend == IMP_BACKEND_CUDA) fail(IMP_ERR_UNSUPPORTED, "this libimp was built without the CUDA backend");
    const bool use_cuda = false;
#endif
    auto m = std::make_unique<imp_model>();
    m->model = imp::load_model(path);
    m->backend = use_cuda ? IMP_BACKEND_CUDA : IMP_BACKEND_CPU;
    m->device = p.device;
    imp::register_handle(m.get());
    *out = m.release();
  });
}

void imp_model_free(imp_model* model) {
  if (!model || !imp::unregister_handle(model)) return;  // NULL, or freed already: nothing to do
  std::unique_lock<std::mutex> lock(imp::lifetime_mutex());
  model->released = true;
  if (model->n_contexts > 0) return;  // the last imp_context_free() frees it
  lock.unlock();
  delete model;
}

imp_status imp_model_get_info(const imp_model* model, imp_model_info* out) {
  return guard([&] {
    imp::require_live(model, "model");
    require(out, "out");
    if (out->size < offsetof(imp_model_info, n_vocab) + sizeof(int32_t))
      fail(IMP_ERR_INVALID_ARGUMENT, "imp_model_info.size is ", out->size, "; set it to sizeof(imp_model_info)");
    const imp::ModelConfig& c = model->model->config;
    imp_model_info info;
    std::memset(&info, 0, sizeof info);
    info.size = std::min<uint32_t>(out->size, sizeof info);
    info.n_vocab = c.n_vocab;
    info.n_embd = c.n_embd;
    info.n_layer = c.n_layer;
    info.n_layer_full = c.n_layer_of(imp::LayerKind::FullAttention);
    info.n_layer_linear = c.n_layer_of(imp::LayerKind::LinearAttention);
    info.n_expert = c.n_expert;
    info.n_expert_used = c.n_expert_used;
    info.n_mtp_layer = model->model->weights.has_mtp ? c.n_mtp_layer : 0;
    info.n_ctx_train = c.n_ctx_train;
    info.eos_token = c.eos_token_id;
    std::strncpy(info.arch, imp::family_name(c.family), sizeof info.arch - 1);
    std::memcpy(out, &info, info.size);  // fields past the caller's size are not written
  });
}

int32_t imp_model_n_vocab(const imp_model* model) { return imp::is_live(model) ? model->model->config.n_vocab : -1; }

/* ---------------------------------------------------------------------------------------------------------- */

imp_context_params imp_context_default_params(void) {
  imp_context_params p;
  std::memset(&p, 0, sizeof p);
  p.size = sizeof p;
  p.n_ctx = 0;
  p.n_threads = 0;
  return p;
}

imp_status imp_context_create(imp_context** out, imp_model* model, const imp_context_params* params) {
  if (out) *out = nullptr;
  return guard([&] {
    require(out, "out");
    imp::require_live(model, "model");
    const imp_context_params p =
        imp::read_params(params, imp_context_default_params(), "imp_context_params", "imp_context_default_params");
    int n_ctx = p.n_ctx == 0 ? 4096 : p.n_ctx;
    if (n_ctx < 1 || n_ctx > (1 << 24)) fail(IMP_ERR_INVALID_ARGUMENT, "n_ctx ", p.n_ctx, " is out of range [1, 16777216]");
    if (p.n_threads < 0 || p.n_threads > 1024) fail(IMP_ERR_INVALID_ARGUMENT, "n_threads ", p.n_threads, " is out of range [0, 1024]");
    auto ctx = std::make_unique<imp_context>();
    ctx->model = model;
    std::unique_ptr<imp::ForwardPass> forward;
#if IMP_WITH_CUDA
    if (model->backend == IMP_BACKEND_CUDA) forward = imp::make_cuda_forward(*model->model, n_ctx, model->device);
#endif
    if (!forward) forward = imp::make_cpu_forward(*model->model, n_ctx, p.n_threads);
    ctx->engine = std::make_unique<imp::Engine>(*model->model, std::move(forward));
    {
      std::lock_guard<std::mutex> lock(imp::lifetime_mutex());
      ++model->n_contexts;
    }
    imp::register_handle(ctx.get());
    *out = ctx.release();
  });
}

void imp_context_free(imp_context* ctx) {
  if (!ctx || !imp::unregister_handle(ctx)) return;  // NULL, or freed already: nothing to do
  imp_model* model = const_cast<imp_model*>(ctx->model);
  delete ctx;
  std::unique_lock<std::mutex> lock(imp::lifetime_mutex());
  const bool last = --model->n_contexts == 0 && model->released;
  lock.unlock();
  if (last) delete model;
}

imp_status imp_context_reset(imp_context* ctx) {
  return guard([&] {
    imp::require_live(ctx, "ctx");
    ctx->engine->reset();
  });
}

int32_t imp_context_n_past(const imp_context* ctx) { return imp::is_live(ctx) ? ctx->engine->n_past() : -1; }
int32_t imp_context_n_ctx(const imp_context* ctx) { return imp::is_live(ctx) ? ctx->engine->n_ctx() : -1; }

/* ---------------------------------------------------------------------------------------------------------- */

imp_status imp_prefill(imp_context* ctx, const imp_token* tokens, int32_t n_tokens, imp_logits_mode mode_arg,
                       float* logits, size_t logits_capacity) {
  return guard([&] {
    const int32_t mode = imp::enum_bits(mode_arg);
    imp::require_live(ctx, "ctx");
    require(tokens, "tokens");
    if (n_tokens <= 0) fail(IMP_ERR_INVALID_ARGUMENT, "n_tokens is ", n_tokens, "; it must be > 0");
    if (mode != IMP_LOGITS_NONE && mode != IMP_LOGITS_LAST && mode != IMP_LOGITS_ALL)
      fail(IMP_ERR_INVALID_ARGUMENT, "unknown logits mode ", mode);
    const size_t n_vocab = size_t(ctx->model->model->config.n_vocab);
    const size_t n_rows = mode == IMP_LOGITS_ALL ? size_t(n_tokens) : mode == IMP_LOGITS_LAST ? 1 : 0;
    if (n_rows) {
      require(logits, "logits");
      if (logits_capacity < n_rows * n_vocab)
        fail(IMP_ERR_BUFFER_TOO_SMALL, "logits holds ", logits_capacity, " floats; this call writes ", n_rows * n_vocab);
    }
    ctx->engine->prefill(tokens, n_tokens, mode == IMP_LOGITS_ALL, n_rows ? logits : nullptr);
  });
}

imp_status imp_decode(imp_context* ctx, imp_token token, float* logits, size_t logits_capacity) {
  return imp_prefill(ctx, &token, 1, logits ? IMP_LOGITS_LAST : IMP_LOGITS_NONE, logits, logits_capacity);
}

}  // extern "C"
