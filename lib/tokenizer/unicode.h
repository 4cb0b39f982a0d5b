// Unicode and byte-level helpers of the tokenizer: strict UTF-8 decoding, the character classes the
// pre-tokenizer regexes use (\p{L}, \p{N}, \p{M}, \s as Oniguruma defines them), NFC through utf8proc, and GPT-2's
// bytes_to_unicode map that byte-level BPE vocabularies are written in.
#pragma once

#include "core/utf8.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace imp::tok {

// Decodes one code point at s[i]; returns its length in bytes (1..4), or 0 when the bytes there are not
// well-formed UTF-8 (overlong forms, surrogates, > U+10FFFF and truncated sequences are all rejected).
size_t utf8_decode(std::string_view s, size_t i, uint32_t* cp);
// Byte offset of the first ill-formed sequence, or npos when s is valid UTF-8.
size_t utf8_first_invalid(std::string_view s);
using imp::utf8_append;  // core/utf8.h
// Bytes at the end of s that are a proper prefix of a well-formed UTF-8 sequence (0..3): what a streaming
// decoder must hold back until the next piece arrives.
size_t utf8_incomplete_tail(const char* s, size_t n);

// The classes the pre-tokenizer needs. Whitespace is Unicode's White_Space property, which is what \s means in
// Oniguruma (the regex engine Hugging Face tokenizers uses) for Unicode text. Letter is \p{L} (Lu Ll Lt Lm Lo),
// Number \p{N} (Nd Nl No), Mark \p{M} (Mn Mc Me: combining marks, e.g. U+0301, Devanagari vowel signs, Arabic
// harakat, variation selectors); Other is everything else.
enum class CharClass : uint8_t { Letter, Number, Space, Mark, Other };
CharClass char_class(uint32_t cp);
inline bool is_cr_or_lf(uint32_t cp) { return cp == '\r' || cp == '\n'; }

// NFC of valid UTF-8 text (ASCII is returned as is without calling utf8proc).
std::string nfc(std::string_view s);

// GPT-2's bytes_to_unicode: every byte maps to one printable code point; the inverse maps back.
const std::string& byte_to_unicode_utf8(uint8_t b);  // the code point, UTF-8 encoded
int unicode_to_byte(uint32_t cp);                     // the byte, or -1 when cp is not in the map
// Byte-level form of raw bytes (what vocab entries are written in), and back. The inverse returns false when a
// character is outside the map, leaving *out unspecified.
std::string bytes_to_byte_level(std::string_view raw);
bool byte_level_to_bytes(std::string_view text, std::string* out);

}  // namespace imp::tok
