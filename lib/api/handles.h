// What the opaque handles of imp.h are.
#pragma once

#include <imp/imp.h>

#include "engine/engine.h"
#include "model/model.h"

#include <memory>
#include <vector>

struct imp_model {
  std::unique_ptr<imp::Model> model;
  int32_t backend = IMP_BACKEND_CPU;  // the backend chosen at load (AUTO resolved): IMP_BACKEND_CPU or _CUDA
  int32_t device = 0;                 // CUDA device ordinal (imp_model_params.device)
};

struct imp_context {
  const imp_model* model = nullptr;
  std::unique_ptr<imp::Engine> engine;
};
