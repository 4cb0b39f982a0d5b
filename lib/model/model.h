// A loaded model: config, the mapped weight files and the typed views into them. Immutable after load and
// shared by every context (and thread) that uses it.
#pragma once

#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>

namespace imp {

namespace gguf { class File; }

struct Model {
  std::string path;
  ModelConfig config;
  SafeTensors files;                       // Hugging Face directory
  std::shared_ptr<const gguf::File> gguf;  // or a GGUF file (weights point into its mapping)
  ModelWeights weights;
  // A random-weight model (model/random_model.h): every matrix points into `placeholders`, whose bytes carry no
  // data; the CUDA backend fills those matrices on the device from `random_seed`.
  bool random_weights = false;
  uint64_t random_seed = 0;
  std::deque<unsigned char> placeholders;  // a deque: growing it never moves the bytes the Mats point at
  std::unordered_set<const void*> placeholder_set;
  bool is_placeholder(const void* p) const { return random_weights && placeholder_set.count(p) != 0; }
};

// Loads a Hugging Face model directory, or a GGUF file (a path whose first bytes are the GGUF magic, or that ends
// in .gguf). Throws imp::Error (see imp_model_load for the codes).
std::unique_ptr<Model> load_model(const std::string& path);

// The GGUF path alone (lib/model/gguf_model.cpp).
std::unique_ptr<Model> load_gguf_model(const std::string& path);

}  // namespace imp
