#include "tokenizer/json_reader.h"

#include "core/error.h"
#include "tokenizer/unicode.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace imp::tok {

using Kind = JsonView::Kind;

class JsonParser {
 public:
  JsonParser(JsonDoc& doc) : doc_(doc), s_(doc.text_) {}

  void run() {
    if (s_.size() >= 0xFFFFFFF0u) error("file too large");
    skip_ws();
    value(0);
    skip_ws();
    if (p_ != s_.size()) error("trailing text");
  }

 private:
  // Deep nesting is refused instead of overflowing the stack; tokenizer.json nests a handful of levels.
  static constexpr int kMaxDepth = 128;

  [[noreturn]] void error(const char* what) {
    fail(IMP_ERR_TOKENIZER, doc_.source_, ": invalid JSON (", what, " at byte ", p_, ")");
  }
  void skip_ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t')) ++p_;
  }
  uint32_t push(Kind kind, size_t start) {
    doc_.nodes_.push_back(JsonDoc::Node{kind, false, uint32_t(start), 0, 0, 0});
    return uint32_t(doc_.nodes_.size() - 1);
  }
  void close(uint32_t node, size_t end) {
    doc_.nodes_[node].end = uint32_t(end);
    doc_.nodes_[node].next = uint32_t(doc_.nodes_.size());
  }

  void string() {
    ++p_;  // the opening quote
    uint32_t node = push(Kind::String, p_);
    bool escaped = false;
    for (;;) {
      if (p_ >= s_.size()) error("unterminated string");
      char c = s_[p_];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c == '\\') {
        escaped = true;
        ++p_;
        if (p_ >= s_.size()) error("unterminated string");
      }
      ++p_;
    }
    doc_.nodes_[node].escaped = escaped;
    close(node, p_);
    ++p_;  // the closing quote
  }

  void literal(const char* word, Kind kind) {
    size_t n = std::strlen(word);
    if (s_.compare(p_, n, word) != 0) error("unexpected character");
    close(push(kind, p_), p_ + n);
    p_ += n;
  }

  void number() {
    uint32_t node = push(Kind::Number, p_);
    while (p_ < s_.size() && std::strchr("0123456789+-.eE", s_[p_]) && s_[p_] != '\0') ++p_;
    close(node, p_);
  }

  void value(int depth) {
    if (p_ >= s_.size()) error("unexpected end");
    char c = s_[p_];
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) error("nesting too deep");
      const bool object = c == '{';
      const char end = object ? '}' : ']';
      uint32_t node = push(object ? Kind::Object : Kind::Array, p_);
      ++p_;
      skip_ws();
      uint32_t count = 0;
      if (p_ < s_.size() && s_[p_] == end) {
        ++p_;
      } else {
        for (;;) {
          skip_ws();
          if (object) {
            if (p_ >= s_.size() || s_[p_] != '"') error("expected a key");
            string();
            skip_ws();
            if (p_ >= s_.size() || s_[p_] != ':') error("expected ':'");
            ++p_;
            skip_ws();
          }
          value(depth + 1);
          ++count;
          skip_ws();
          if (p_ < s_.size() && s_[p_] == ',') { ++p_; continue; }
          if (p_ < s_.size() && s_[p_] == end) { ++p_; break; }
          error(object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
      }
      doc_.nodes_[node].size = count;
      close(node, p_);
    } else if (c == '"') {
      string();
    } else if (c == 't') {
      literal("true", Kind::Bool);
    } else if (c == 'f') {
      literal("false", Kind::Bool);
    } else if (c == 'n') {
      literal("null", Kind::Null);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number();
    } else {
      error("unexpected character");
    }
  }

  JsonDoc& doc_;
  const std::string& s_;
  size_t p_ = 0;
};

JsonDoc JsonDoc::parse(std::string text, const std::string& source) {
  JsonDoc doc;
  doc.text_ = std::move(text);
  doc.source_ = source;
  doc.nodes_.reserve(doc.text_.size() / 8 + 16);
  JsonParser(doc).run();
  return doc;
}

Kind JsonView::kind() const { return doc_->nodes_[index_].kind; }

std::string_view JsonView::raw() const {
  const auto& n = doc_->nodes_[index_];
  return std::string_view(doc_->text_).substr(n.start, n.end - n.start);
}

size_t JsonView::size() const {
  const auto& n = doc_->nodes_[index_];
  return (n.kind == Kind::Object || n.kind == Kind::Array) ? n.size : 0;
}

std::vector<JsonView> JsonView::elements() const {
  std::vector<JsonView> out;
  const auto& n = doc_->nodes_[index_];
  if (n.kind != Kind::Array) return out;
  out.reserve(n.size);
  uint32_t j = index_ + 1;
  for (uint32_t c = 0; c < n.size; ++c) {
    out.push_back(JsonView(doc_, j));
    j = doc_->nodes_[j].next;
  }
  return out;
}

std::vector<std::pair<std::string, JsonView>> JsonView::members() const {
  std::vector<std::pair<std::string, JsonView>> out;
  const auto& n = doc_->nodes_[index_];
  if (n.kind != Kind::Object) return out;
  out.reserve(n.size);
  uint32_t j = index_ + 1;
  for (uint32_t c = 0; c < n.size; ++c) {
    out.emplace_back(JsonView(doc_, j).as_string("key"), JsonView(doc_, j + 1));
    j = doc_->nodes_[j + 1].next;
  }
  return out;
}

std::optional<JsonView> JsonView::find(std::string_view key) const {
  const auto& n = doc_->nodes_[index_];
  if (n.kind != Kind::Object) return std::nullopt;
  uint32_t j = index_ + 1;
  for (uint32_t c = 0; c < n.size; ++c) {
    JsonView k(doc_, j);
    if (doc_->nodes_[j].escaped ? k.as_string() == key : k.raw() == key) return JsonView(doc_, j + 1);
    j = doc_->nodes_[j + 1].next;
  }
  return std::nullopt;
}

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

std::string JsonView::as_string(const char* what) const {
  if (kind() != Kind::String) fail(IMP_ERR_TOKENIZER, doc_->source_, ": ", what, " is not a string");
  std::string_view s = raw();
  if (!doc_->nodes_[index_].escaped) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    ++i;  // the parser guarantees a character after each backslash
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
        if (hi < 0) fail(IMP_ERR_TOKENIZER, doc_->source_, ": bad \\u escape in ", what);
        i += 4;
        uint32_t cp = uint32_t(hi);
        if (hi >= 0xD800 && hi <= 0xDBFF && i + 6 < s.size() + 1 && s.substr(i + 1, 2) == "\\u") {
          int lo = hex4(s, i + 3);
          if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((uint32_t(hi) - 0xD800) << 10) + (uint32_t(lo) - 0xDC00);
            i += 6;
          }
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) fail(IMP_ERR_TOKENIZER, doc_->source_, ": unpaired surrogate in ", what);
        utf8_append(out, cp);
        break;
      }
      default: fail(IMP_ERR_TOKENIZER, doc_->source_, ": bad escape in ", what);
    }
  }
  return out;
}

double JsonView::as_number(const char* what) const {
  if (kind() != Kind::Number) fail(IMP_ERR_TOKENIZER, doc_->source_, ": ", what, " is not a number");
  std::string s(raw());
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    fail(IMP_ERR_TOKENIZER, doc_->source_, ": ", what, " is not a valid number");
  return v;
}

int64_t JsonView::as_int(const char* what) const {
  double v = as_number(what);
  if (v != std::floor(v) || std::fabs(v) > 9.0e15) fail(IMP_ERR_TOKENIZER, doc_->source_, ": ", what, " is not an integer");
  return int64_t(v);
}

bool JsonView::as_bool(const char* what) const {
  if (kind() != Kind::Bool) fail(IMP_ERR_TOKENIZER, doc_->source_, ": ", what, " is not a boolean");
  return raw()[0] == 't';
}

}  // namespace imp::tok
