// Hugging Face model directory -> GGUF, following llama.cpp's convert_hf_to_gguf.py conventions for qwen35,
// qwen35moe and qwen3next (names, metadata keys, and its transforms: +1 folded into zero-centred norms, A_log
// stored as -exp(A_log), conv1d squeezed, Qwen3.5 value heads reordered grouped -> tiled, Qwen3-Next qkvz split
// into attn_qkv + attn_gate, MoE experts stacked, the MTP head as NextN layer blk.L with nextn_predict_layers).
// Quantization is round-to-nearest per block (no importance matrix, no scale search). A directory with a
// tokenizer.json also gets llama.cpp's tokenizer.ggml.* keys (model "gpt2", pre "qwen2", tokens padded to
// vocab_size, token types, merges; see imp::GgufVocab), so imp_tokenizer_load reads the tokenizer from the .gguf.
#pragma once

#include <string>

namespace imp::gguf {

// type: "f32", "q8_0", "q4_k", "q5_k", "q6_k" (all matrices of that type where rows allow it) or "q4_k_m"
// (llama.cpp's Q4_K_M mix: Q4_K for most matrices; Q6_K for output and for attn_v / ffn_down in the layers
// llama.cpp gives more bits; Q5_K for attn_qkv). Matrices whose rows are not a multiple of the block size fall
// back to Q8_0 (rows a multiple of 32) or F32; vectors, conv kernels and routers stay F32.
// Throws imp::Error (the model loader's codes, IMP_ERR_INVALID_ARGUMENT for a bad type, IMP_ERR_IO,
// IMP_ERR_TOKENIZER for a tokenizer.json that is malformed or that GGUF cannot carry exactly).
void convert_hf_dir(const std::string& dir, const std::string& out_path, const std::string& type);

// Rewrites a GGUF file with every tensor dequantized to F32 (metadata copied): the reference for quantized runs.
void dequantize_file(const std::string& in_path, const std::string& out_path);

}  // namespace imp::gguf
