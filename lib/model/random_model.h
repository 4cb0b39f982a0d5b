// A model of a config.json's shape with no weight files: the benchmark's stand-in for real checkpoints (vLLM's
// "dummy" load format). Every matrix is a view of a one-byte placeholder that the CUDA backend recognises and
// fills on the device with seeded uniform values (lib/cuda/device_weights.cpp), so a 9B or 35B shape can be
// measured at its real size without downloading or even holding the weights on the host. The small fp32 vectors
// (norms, gates, conv taps) are real host data with plausible values. Only the CUDA backend runs such a model;
// the CPU backend refuses it.
#pragma once

#include "model/model.h"

#include <cstdint>
#include <memory>
#include <string>

namespace imp {

// How the matrices are stored: one plain type, or a llama.cpp-style mix of block-quantized types.
enum class RandomWeightsType {
  BF16,
  F16,
  F32,
  Q8_0,    // every matrix Q8_0
  Q4_K_M,  // Q4_K, with Q6_K for lm_head and the down/out projections (as llama.cpp's Q4_K_M favours them)
};

// Parses "bf16", "f16", "f32", "q8_0", "q4_k_m"; throws IMP_ERR_INVALID_ARGUMENT for anything else.
RandomWeightsType parse_random_weights_type(const std::string& name);

// The config at config_path (a config.json file, or a directory holding one) with placeholder matrices of the
// given type; the MTP head is included when the config declares one. Throws as load_config does.
std::unique_ptr<Model> random_model(const std::string& config_path, RandomWeightsType type, uint64_t seed);

}  // namespace imp
