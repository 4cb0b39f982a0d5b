// Writes a random tiny Qwen3.5 checkpoint with an MTP head (config.json + model.safetensors, no tokenizer) into
// the directory given, for the example tests when no real model is there. usage: make_tiny_model DIR
#include "support/tiny_model.h"

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  try {
    imp::test::TinyModelOptions o;
    o.mtp = true;
    o.seed = 7;
    imp::test::write_tiny_model(argv[1], o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_tiny_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
