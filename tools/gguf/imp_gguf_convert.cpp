// imp-gguf-convert: a Hugging Face Qwen3.5 / Qwen3.6 / Qwen3-Next model directory (config.json + safetensors) to
// a GGUF file the way llama.cpp's convert_hf_to_gguf.py lays it out, F32 or quantized (round-to-nearest). When
// the directory has a tokenizer.json, its tokenizer goes into the tokenizer.ggml.* keys (llama.cpp's layout).
//
//   imp-gguf-convert <model_dir> <out.gguf> [--type f32|q8_0|q4_k|q5_k|q6_k|q4_k_m]
//   imp-gguf-convert --dequantize <in.gguf> <out.gguf>     (every tensor to F32, metadata kept)
#include "core/error.h"
#include "gguf/convert.h"

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::strcmp(argv[1], "--dequantize") == 0) {
      imp::gguf::dequantize_file(argv[2], argv[3]);
      return 0;
    }
    std::string type = "f32";
    if (argc == 5 && std::strcmp(argv[3], "--type") == 0) type = argv[4];
    else if (argc != 3) {
      std::fprintf(stderr,
                   "usage: %s <model_dir> <out.gguf> [--type f32|q8_0|q4_k|q5_k|q6_k|q4_k_m]\n"
                   "       %s --dequantize <in.gguf> <out.gguf>\n",
                   argv[0], argv[0]);
      return 2;
    }
    imp::gguf::convert_hf_dir(argv[1], argv[2], type);
    return 0;
  } catch (const imp::Error& e) {
    std::fprintf(stderr, "imp-gguf-convert: %s (%s)\n", e.what(), imp_status_name(e.status()));
    return 1;
  }
}
