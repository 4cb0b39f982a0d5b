// A linear-time JSON reader for tokenizer.json. core/json.h's jsmn (built without parent links) rescans its
// token array at every ',' inside a container, which is quadratic on a 150k-entry vocab: 30+ s for Qwen3's
// 11 MB file. This recursive-descent parser builds the same kind of flat node array in one pass (well under a
// second) and reports problems as IMP_ERR_TOKENIZER "<source>: <what>".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imp::tok {

class JsonDoc;

class JsonView {
 public:
  enum class Kind : uint8_t { Object, Array, String, Number, Bool, Null };
  Kind kind() const;
  bool is_object() const { return kind() == Kind::Object; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_null() const { return kind() == Kind::Null; }

  std::optional<JsonView> find(std::string_view key) const;  // object member; nullopt if absent / not an object
  std::vector<JsonView> elements() const;                    // array elements (empty for other kinds)
  std::vector<std::pair<std::string, JsonView>> members() const;
  size_t size() const;  // elements of an array / members of an object

  // Typed reads; the wrong kind throws IMP_ERR_TOKENIZER naming `what`.
  std::string as_string(const char* what = "value") const;
  double as_number(const char* what = "value") const;
  int64_t as_int(const char* what = "value") const;
  bool as_bool(const char* what = "value") const;

 private:
  friend class JsonDoc;
  JsonView(const JsonDoc* doc, uint32_t index) : doc_(doc), index_(index) {}
  std::string_view raw() const;
  const JsonDoc* doc_;
  uint32_t index_;
};

class JsonDoc {
 public:
  static JsonDoc parse(std::string text, const std::string& source);
  JsonView root() const { return JsonView(this, 0); }
  const std::string& source() const { return source_; }

 private:
  friend class JsonView;
  friend class JsonParser;
  struct Node {
    JsonView::Kind kind;
    bool escaped;    // a string with backslashes (must be unescaped before comparing)
    uint32_t start;  // byte range in text_ (strings: without the quotes)
    uint32_t end;
    uint32_t size;   // children: elements, or members of an object (whose key and value nodes alternate)
    uint32_t next;   // index of the node after this one's subtree
  };
  std::string text_;
  std::string source_;
  std::vector<Node> nodes_;
};

}  // namespace imp::tok
