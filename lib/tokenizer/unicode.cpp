#include "tokenizer/unicode.h"

#include "core/error.h"

#include <utf8proc.h>

#include <array>
#include <cstdlib>
#include <memory>

namespace imp::tok {

size_t utf8_decode(std::string_view s, size_t i, uint32_t* cp) {
  const size_t n = s.size();
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t len;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; ++k) {
    uint8_t cc = b(i + k);
    if ((cc & 0xC0) != 0x80) return 0;
    v = (v << 6) | (cc & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

size_t utf8_first_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) { ++i; continue; }
    uint32_t cp;
    size_t len = utf8_decode(s, i, &cp);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t utf8_incomplete_tail(const char* s, size_t n) {
  // Look back at most 3 bytes for the lead byte of the last sequence; hold it back only when the bytes after it
  // are all valid continuations and fewer than the lead byte announces. The second byte's range is checked as
  // well (E0 A0.., ED ..9F, F0 90.., F4 ..8F), so a tail that can never complete is released at once.
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    uint8_t lead = static_cast<uint8_t>(s[n - back]);
    if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for the lead
    size_t need = (lead >= 0xC2 && lead <= 0xDF) ? 2 : (lead >= 0xE0 && lead <= 0xEF) ? 3
                : (lead >= 0xF0 && lead <= 0xF4) ? 4 : 0;
    if (need <= back) return 0;  // ASCII, an invalid lead, or a complete sequence
    if (back >= 2) {
      uint8_t second = static_cast<uint8_t>(s[n - back + 1]);
      uint8_t lo = 0x80, hi = 0xBF;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
      if (second < lo || second > hi) return 0;
    }
    return back;
  }
  return 0;
}

CharClass char_class(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Letter;
    if (cp >= '0' && cp <= '9') return CharClass::Number;
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20) return CharClass::Space;
    return CharClass::Other;
  }
  // White_Space (Unicode 15): the set Oniguruma's \s matches outside ASCII.
  if (cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
      cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
    return CharClass::Space;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return CharClass::Letter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return CharClass::Number;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
      return CharClass::Mark;
    default:
      return CharClass::Other;
  }
}

std::string nfc(std::string_view s) {
  bool ascii = true;
  for (char c : s) {
    if (static_cast<uint8_t>(c) >= 0x80) { ascii = false; break; }
  }
  if (ascii) return std::string(s);
  utf8proc_uint8_t* dst = nullptr;
  // An explicit length (no UTF8PROC_NULLTERM) so that NUL bytes inside the text survive.
  utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                      static_cast<utf8proc_ssize_t>(s.size()), &dst,
                                      static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (len < 0) {
    if (len == UTF8PROC_ERROR_NOMEM) throw std::bad_alloc();
    fail(IMP_ERR_INVALID_ARGUMENT, "NFC normalization failed: ", utf8proc_errmsg(len));
  }
  std::unique_ptr<utf8proc_uint8_t, void (*)(void*)> owned(dst, std::free);
  return std::string(reinterpret_cast<const char*>(dst), static_cast<size_t>(len));
}

namespace {

struct ByteMaps {
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 324> from_cp;  // code points of the map are all below 256 + 68
  ByteMaps() {
    from_cp.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + n++);
      utf8_append(to_utf8[b], cp);
      from_cp[cp] = int16_t(b);
    }
  }
};

const ByteMaps& maps() {
  static const ByteMaps m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode_utf8(uint8_t b) { return maps().to_utf8[b]; }

int unicode_to_byte(uint32_t cp) { return cp < maps().from_cp.size() ? maps().from_cp[cp] : -1; }

std::string bytes_to_byte_level(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) out += maps().to_utf8[static_cast<uint8_t>(c)];
  return out;
}

bool byte_level_to_bytes(std::string_view text, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < text.size()) {
    uint32_t cp;
    size_t len = utf8_decode(text, i, &cp);
    if (len == 0) return false;
    int b = unicode_to_byte(cp);
    if (b < 0) return false;
    out->push_back(char(b));
    i += len;
  }
  return true;
}

}  // namespace imp::tok
