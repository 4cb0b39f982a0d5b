// A loaded model: config, the mapped weight files and the typed views into them. Immutable after load and
// shared by every context (and thread) that uses it.
#pragma once

#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

#include <string>

namespace imp {

struct Model {
  std::string path;
  ModelConfig config;
  SafeTensors files;
  ModelWeights weights;
};

// Loads a Hugging Face model directory. Throws imp::Error (see imp_model_load for the codes).
std::unique_ptr<Model> load_model(const std::string& dir);

}  // namespace imp
