// What the opaque handles of imp.h are.
#pragma once

#include <imp/imp.h>

#include "engine/engine.h"
#include "model/model.h"

#include <memory>
#include <mutex>
#include <vector>

namespace imp {
// Every model and context the ABI hands out is registered until it is freed, so that a call with a freed (or
// made-up) handle gets IMP_ERR_INVALID_ARGUMENT instead of touching freed memory, and a double free is a no-op.
// The check is a hash-set lookup under a mutex, nothing next to a forward pass.
void register_handle(const void* h);
bool unregister_handle(const void* h);  // false when h was not live
bool is_live(const void* h);
void require_live(const void* h, const char* what);  // IMP_ERR_NULL_ARGUMENT / IMP_ERR_INVALID_ARGUMENT
std::mutex& lifetime_mutex();
}  // namespace imp

struct imp_model {
  std::unique_ptr<imp::Model> model;
  int32_t backend = IMP_BACKEND_CPU;  // the backend chosen at load (AUTO resolved): IMP_BACKEND_CPU or _CUDA
  int32_t device = 0;                 // CUDA device ordinal (imp_model_params.device)
  // Lifetime: imp_model_free() while contexts still use the model only marks it; the last context's
  // imp_context_free() then frees it. Both fields are guarded by imp::lifetime_mutex().
  int n_contexts = 0;
  bool released = false;
};

struct imp_context {
  const imp_model* model = nullptr;
  std::unique_ptr<imp::Engine> engine;
};
