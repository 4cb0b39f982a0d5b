// The Split pre-tokenizers of byte-level BPE tokenizers, written by hand instead of with a regex library. Each
// reproduces Oniguruma's leftmost, first-alternative-wins backtracking semantics for one exact pattern:
//
//  Qwen2/Qwen3 (tokenizer.json's Split.pattern.Regex):
//    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//  Qwen3.5/Qwen3.6 (the same, with combining marks \p{M} in the letter runs and out of the punctuation runs;
//  llama.cpp's tokenizer.ggml.pre "qwen35"):
//    (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//  GPT-2 (ByteLevel with use_regex true):
//    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// All three patterns match every character, so the Isolated behaviour leaves no gaps: the pieces tile the input.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imp::tok {

enum class SplitPattern { None, Qwen, Qwen35, Gpt2 };

extern const char* const kQwenPattern;
extern const char* const kQwen35Pattern;
extern const char* const kGpt2Pattern;

// The pattern whose exact source text this is, or None for any other string.
SplitPattern pattern_from_regex(std::string_view regex);

// Splits valid UTF-8 text into pieces; returns their [begin, end) byte ranges in order. With None the whole text
// is one piece (an empty text gives no piece).
std::vector<std::pair<size_t, size_t>> pre_tokenize(std::string_view text, SplitPattern pattern);

}  // namespace imp::tok
