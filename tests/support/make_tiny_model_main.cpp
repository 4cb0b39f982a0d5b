// imp_make_tiny_model DIR: writes a tiny random Qwen3.5 checkpoint with an MTP head (config.json +
// model.safetensors, no tokenizer) into DIR with the helpers of tests/support. The example and binding tests fall
// back to it when no real model is in the tree.
#include "support/tiny_model.h"

#include <cstdio>
#include <exception>
#include <filesystem>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  try {
    std::filesystem::create_directories(argv[1]);
    imp::test::TinyModelOptions o;
    o.mtp = true;
    o.seed = 7;
    imp::test::write_tiny_model(argv[1], o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_tiny_model: %s\n", e.what());
    return 1;
  }
  std::printf("wrote a tiny Qwen3.5 model with an MTP head to %s\n", argv[1]);
  return 0;
}
