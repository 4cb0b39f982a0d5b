#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

#include <cstdint>

namespace imp::tok {

const char* const kQwenPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen35Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kGpt2Pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

SplitPattern pattern_from_regex(std::string_view regex) {
  if (regex == kQwenPattern) return SplitPattern::Qwen;
  if (regex == kQwen35Pattern) return SplitPattern::Qwen35;
  if (regex == kGpt2Pattern) return SplitPattern::Gpt2;
  return SplitPattern::None;
}

namespace {

// The text decoded once: code points, their classes and byte offsets (offset[n] = text size). The matchers see
// four classes: a combining mark (CharClass::Mark) is folded into Letter or Other at decoding, by pattern.
struct Chars {
  std::vector<uint32_t> cp;
  std::vector<CharClass> cls;
  std::vector<size_t> offset;
  size_t n = 0;
  bool letter(size_t i) const { return i < n && cls[i] == CharClass::Letter; }
  bool number(size_t i) const { return i < n && cls[i] == CharClass::Number; }
  bool space(size_t i) const { return i < n && cls[i] == CharClass::Space; }
  bool other(size_t i) const { return i < n && cls[i] == CharClass::Other; }
  bool crlf(size_t i) const { return i < n && is_cr_or_lf(cp[i]); }
};

// Simple case folding of the letters the contractions use; U+017F (long s) folds to 's' under (?i), and so does
// U+212A (Kelvin) to 'k', which no contraction uses.
uint32_t fold(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0x17F) return 's';
  return c;
}

// 's|'t|'re|'ve|'m|'ll|'d at i: the match length in characters, 0 if none. The alternatives' second characters
// differ, so at most one of them can match and their order does not matter.
size_t contraction(const Chars& t, size_t i, bool ignore_case) {
  if (t.cp[i] != '\'' || i + 1 >= t.n) return 0;
  auto f = [&](size_t k) { return ignore_case ? fold(t.cp[k]) : t.cp[k]; };
  uint32_t a = f(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 >= t.n) return 0;
  uint32_t b = f(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// \s*[\r\n]+ | \s+(?!\S) | \s+ at a whitespace character i; returns the end of the match.
size_t whitespace(const Chars& t, size_t i, bool newline_alternative) {
  size_t end = i;
  while (t.space(end)) ++end;
  if (newline_alternative) {
    // \s* backtracks from the whole run until [\r\n]+ can match: the match ends after the run's last CR/LF.
    for (size_t k = end; k > i; --k) {
      if (t.crlf(k - 1)) return k;
    }
  }
  // \s+(?!\S): the whole run at the end of the text (or before more whitespace, impossible after a maximal run);
  // otherwise the run less its last character, which the next piece (" word") takes, if that leaves one.
  if (end == t.n) return end;
  if (end - i >= 2) return end - 1;
  return end;  // \s+: a lone whitespace character before a non-space
}

size_t match_qwen(const Chars& t, size_t i) {
  if (size_t m = contraction(t, i, true)) return i + m;
  // [^\r\n\p{L}\p{N}]?\p{L}+ : the optional character is tried first, so a non-letter, non-number, non-CR/LF
  // character directly before letters joins them.
  size_t j = i;
  if (!t.letter(i) && !t.number(i) && !t.crlf(i) && t.letter(i + 1)) j = i + 1;
  if (t.letter(j)) {
    while (t.letter(j)) ++j;
    return j;
  }
  if (t.number(i)) return i + 1;  // \p{N}: one digit at a time
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  j = i;
  if (t.cp[i] == ' ' && t.other(i + 1)) j = i + 1;
  if (t.other(j)) {
    while (t.other(j)) ++j;
    while (t.crlf(j)) ++j;
    return j;
  }
  return whitespace(t, i, true);
}

size_t match_gpt2(const Chars& t, size_t i) {
  if (size_t m = contraction(t, i, false)) return i + m;
  size_t j = (t.cp[i] == ' ') ? i + 1 : i;  // the optional leading space of the next three alternatives
  if (t.letter(j)) {
    while (t.letter(j)) ++j;
    return j;
  }
  if (t.number(j)) {
    while (t.number(j)) ++j;
    return j;
  }
  if (t.other(j)) {
    while (t.other(j)) ++j;
    return j;
  }
  return whitespace(t, i, false);
}

}  // namespace

std::vector<std::pair<size_t, size_t>> pre_tokenize(std::string_view text, SplitPattern pattern) {
  std::vector<std::pair<size_t, size_t>> out;
  if (text.empty()) return out;
  if (pattern == SplitPattern::None) {
    out.emplace_back(0, text.size());
    return out;
  }
  Chars t;
  t.cp.reserve(text.size());
  t.cls.reserve(text.size());
  t.offset.reserve(text.size() + 1);
  // Qwen3.5's pattern is Qwen's with \p{M} joined to \p{L} in the letter run [\p{L}\p{M}]+ and in the
  // punctuation run's [^\s\p{L}\p{M}\p{N}]. With marks classed as letters it therefore is Qwen's pattern, but
  // for the optional leading [^\r\n\p{L}\p{N}]?, which still admits a mark. That changes no match: at a mark the
  // regex takes the mark and the letters and marks after it (or, with none after it, the mark alone as
  // [\p{L}\p{M}]+), and match_qwen takes the run of letters and marks from the mark: the same end. Qwen2/Qwen3
  // and GPT-2 know no \p{M}: there a mark is punctuation-like (Other).
  const CharClass mark_as = pattern == SplitPattern::Qwen35 ? CharClass::Letter : CharClass::Other;
  for (size_t i = 0; i < text.size();) {
    uint32_t cp;
    size_t len = utf8_decode(text, i, &cp);
    if (len == 0) { cp = 0xFFFD; len = 1; }  // callers validate first; never loop forever regardless
    CharClass cls = char_class(cp);
    t.cp.push_back(cp);
    t.cls.push_back(cls == CharClass::Mark ? mark_as : cls);
    t.offset.push_back(i);
    i += len;
  }
  t.n = t.cp.size();
  t.offset.push_back(text.size());
  for (size_t i = 0; i < t.n;) {
    size_t end = pattern == SplitPattern::Gpt2 ? match_gpt2(t, i) : match_qwen(t, i);  // Qwen, Qwen35
    if (end <= i) end = i + 1;  // unreachable (every character matches), kept as a guard against a stall
    out.emplace_back(t.offset[i], t.offset[end]);
    i = end;
  }
  return out;
}

}  // namespace imp::tok
