// A small read-only JSON document over jsmn (Debian's libjsmn-dev): parse once, then walk values by key or
// index. Strings are unescaped to UTF-8 on access. Malformed input throws imp::Error(IMP_ERR_BAD_JSON) with the
// name of the file it came from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imp {

class JsonDocument;

class JsonValue {
 public:
  enum class Kind { Object, Array, String, Number, Bool, Null };

  Kind kind() const;
  bool is_object() const { return kind() == Kind::Object; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_string() const { return kind() == Kind::String; }
  bool is_number() const { return kind() == Kind::Number; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_null() const { return kind() == Kind::Null; }

  // Object member by key; nullopt when absent (or when this is not an object).
  std::optional<JsonValue> find(std::string_view key) const;
  // Elements of an array, or the values of an object's members, in order.
  std::vector<JsonValue> elements() const;
  // Members of an object as (unescaped key, value), in order.
  std::vector<std::pair<std::string, JsonValue>> members() const;
  size_t size() const;  // elements of an array / members of an object

  // Typed reads; each throws IMP_ERR_BAD_JSON naming `what` when the kind is wrong.
  std::string as_string(const char* what = "value") const;
  double as_number(const char* what = "value") const;
  int64_t as_int(const char* what = "value") const;  // number with no fractional part
  bool as_bool(const char* what = "value") const;
  std::string_view raw() const;  // the token's source text (strings without quotes, still escaped)

 private:
  friend class JsonDocument;
  JsonValue(const JsonDocument* doc, int index) : doc_(doc), index_(index) {}
  const JsonDocument* doc_;
  int index_;
};

class JsonDocument {
 public:
  // Parses text; `source` names it in error messages (e.g. a file path).
  static JsonDocument parse(std::string text, const std::string& source);
  JsonValue root() const { return JsonValue(this, 0); }
  const std::string& source() const { return source_; }

 private:
  friend class JsonValue;
  struct Token {
    JsonValue::Kind kind;
    int start, end;  // byte range in text_
    int size;        // jsmn's child count
    int next;        // index of the token after this one's whole subtree
  };
  std::string text_;
  std::string source_;
  std::vector<Token> tokens_;
};

}  // namespace imp
