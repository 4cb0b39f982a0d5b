#include "core/json.h"

#include "core/error.h"
#include "core/utf8.h"

#include <cmath>
#include <cstdlib>

#define JSMN_STRICT
#define JSMN_PARENT_LINKS  // O(1) closing of containers: large flat objects (a 150k-entry vocab) parse in linear time
#include <jsmn.h>

namespace imp {

namespace {

int hex4(std::string_view s, size_t i) {
  if (i + 4 > s.size()) return -1;
  int v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    char c = s[k];
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

JsonDocument JsonDocument::parse(std::string text, const std::string& source) {
  JsonDocument doc;
  doc.text_ = std::move(text);
  doc.source_ = source;
  jsmn_parser parser;
  jsmn_init(&parser);
  int count = jsmn_parse(&parser, doc.text_.data(), doc.text_.size(), nullptr, 0);
  if (count <= 0) fail(IMP_ERR_BAD_JSON, source, ": malformed JSON (", count == 0 ? "empty" : "syntax error", ")");
  std::vector<jsmntok_t> toks(count);
  jsmn_init(&parser);
  int got = jsmn_parse(&parser, doc.text_.data(), doc.text_.size(), toks.data(), toks.size());
  if (got != count) fail(IMP_ERR_BAD_JSON, source, ": malformed JSON");
  // jsmn in strict mode accepts several top-level values; a JSON document has exactly one.
  doc.tokens_.resize(count);
  for (int i = 0; i < count; ++i) {
    const jsmntok_t& t = toks[i];
    Token& out = doc.tokens_[i];
    out.start = t.start;
    out.end = t.end;
    out.size = t.size;
    switch (t.type) {
      case JSMN_OBJECT: out.kind = JsonValue::Kind::Object; break;
      case JSMN_ARRAY: out.kind = JsonValue::Kind::Array; break;
      case JSMN_STRING: out.kind = JsonValue::Kind::String; break;
      case JSMN_PRIMITIVE: {
        char c = doc.text_[t.start];
        out.kind = c == 't' || c == 'f' ? JsonValue::Kind::Bool : c == 'n' ? JsonValue::Kind::Null : JsonValue::Kind::Number;
        break;
      }
      default: fail(IMP_ERR_BAD_JSON, source, ": malformed JSON");
    }
  }
  // next[i] = index past token i's subtree, computed right to left.
  for (int i = count - 1; i >= 0; --i) {
    Token& t = doc.tokens_[i];
    int j = i + 1;
    int children = (t.kind == JsonValue::Kind::Object) ? 2 * t.size : (t.kind == JsonValue::Kind::Array ? t.size : 0);
    // An object's members are key tokens whose size is 1 (their value follows); walk child subtrees.
    if (t.kind == JsonValue::Kind::Object) {
      for (int c = 0; c < t.size; ++c) {
        if (j >= count) fail(IMP_ERR_BAD_JSON, source, ": malformed JSON");
        j = j + 1;  // the key (a string with size 1)
        if (j >= count) fail(IMP_ERR_BAD_JSON, source, ": malformed JSON");
        j = doc.tokens_[j].next;
      }
    } else if (t.kind == JsonValue::Kind::Array) {
      for (int c = 0; c < t.size; ++c) {
        if (j >= count) fail(IMP_ERR_BAD_JSON, source, ": malformed JSON");
        j = doc.tokens_[j].next;
      }
    }
    (void)children;
    t.next = j;
  }
  if (doc.tokens_[0].next != count) fail(IMP_ERR_BAD_JSON, source, ": malformed JSON (trailing values)");
  for (size_t k = doc.tokens_[0].end; k < doc.text_.size(); ++k) {
    char c = doc.text_[k];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') fail(IMP_ERR_BAD_JSON, source, ": malformed JSON (trailing text)");
  }
  return doc;
}

JsonValue::Kind JsonValue::kind() const { return doc_->tokens_[index_].kind; }

std::string_view JsonValue::raw() const {
  const auto& t = doc_->tokens_[index_];
  return std::string_view(doc_->text_).substr(t.start, t.end - t.start);
}

size_t JsonValue::size() const {
  const auto& t = doc_->tokens_[index_];
  return (t.kind == Kind::Object || t.kind == Kind::Array) ? size_t(t.size) : 0;
}

std::vector<JsonValue> JsonValue::elements() const {
  std::vector<JsonValue> out;
  const auto& t = doc_->tokens_[index_];
  int j = index_ + 1;
  if (t.kind == Kind::Array) {
    for (int c = 0; c < t.size; ++c) {
      out.push_back(JsonValue(doc_, j));
      j = doc_->tokens_[j].next;
    }
  } else if (t.kind == Kind::Object) {
    for (int c = 0; c < t.size; ++c) {
      out.push_back(JsonValue(doc_, j + 1));
      j = doc_->tokens_[j + 1].next;
    }
  }
  return out;
}

std::vector<std::pair<std::string, JsonValue>> JsonValue::members() const {
  std::vector<std::pair<std::string, JsonValue>> out;
  const auto& t = doc_->tokens_[index_];
  if (t.kind != Kind::Object) return out;
  int j = index_ + 1;
  for (int c = 0; c < t.size; ++c) {
    out.emplace_back(JsonValue(doc_, j).as_string("key"), JsonValue(doc_, j + 1));
    j = doc_->tokens_[j + 1].next;
  }
  return out;
}

std::optional<JsonValue> JsonValue::find(std::string_view key) const {
  const auto& t = doc_->tokens_[index_];
  if (t.kind != Kind::Object) return std::nullopt;
  int j = index_ + 1;
  for (int c = 0; c < t.size; ++c) {
    JsonValue k(doc_, j);
    // Keys in config files have no escapes; compare raw first and fall back to the unescaped form.
    if (k.raw() == key || (k.raw().find('\\') != std::string_view::npos && k.as_string() == key))
      return JsonValue(doc_, j + 1);
    j = doc_->tokens_[j + 1].next;
  }
  return std::nullopt;
}

std::string JsonValue::as_string(const char* what) const {
  if (kind() != Kind::String) fail(IMP_ERR_BAD_JSON, doc_->source_, ": ", what, " is not a string");
  std::string_view s = raw();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= s.size()) fail(IMP_ERR_BAD_JSON, doc_->source_, ": bad escape in ", what);
    switch (s[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        int hi = hex4(s, i + 1);
        if (hi < 0) fail(IMP_ERR_BAD_JSON, doc_->source_, ": bad \\u escape in ", what);
        i += 4;
        uint32_t cp = uint32_t(hi);
        if (hi >= 0xD800 && hi <= 0xDBFF && i + 6 < s.size() + 0 && s[i + 1] == '\\' && s[i + 2] == 'u') {
          int lo = hex4(s, i + 3);
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((uint32_t(hi) - 0xD800) << 10) + (uint32_t(lo) - 0xDC00);
            i += 6;
          }
        }
        utf8_append(out, cp);
        break;
      }
      default: fail(IMP_ERR_BAD_JSON, doc_->source_, ": bad escape in ", what);
    }
  }
  return out;
}

double JsonValue::as_number(const char* what) const {
  if (kind() != Kind::Number) fail(IMP_ERR_BAD_JSON, doc_->source_, ": ", what, " is not a number");
  std::string s(raw());
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) fail(IMP_ERR_BAD_JSON, doc_->source_, ": ", what, " is not a valid number");
  return v;
}

int64_t JsonValue::as_int(const char* what) const {
  double v = as_number(what);
  if (v != std::floor(v) || std::fabs(v) > 9.0e15) fail(IMP_ERR_BAD_JSON, doc_->source_, ": ", what, " is not an integer");
  return int64_t(v);
}

bool JsonValue::as_bool(const char* what) const {
  if (kind() != Kind::Bool) fail(IMP_ERR_BAD_JSON, doc_->source_, ": ", what, " is not a boolean");
  return raw()[0] == 't';
}

}  // namespace imp
