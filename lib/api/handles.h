// What the opaque handles of imp.h are.
#pragma once

#include "engine/engine.h"
#include "model/model.h"

#include <memory>
#include <vector>

struct imp_model {
  std::unique_ptr<imp::Model> model;
};

struct imp_context {
  const imp_model* model = nullptr;
  std::unique_ptr<imp::Engine> engine;
};
