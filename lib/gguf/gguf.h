// GGUF (v2 / v3) files: a memory-mapped, fully validated reader. Every count, string length, array length, tensor
// dimension, offset and extent is checked against the bytes actually present (overflow-safe) before it is used,
// and each malformed case throws imp::Error with a specific status and a message naming the file and what is
// wrong:
//   IMP_ERR_BAD_HEADER   bad magic, unsupported version, truncated header, a count or length larger than the
//                        file can hold, an unknown metadata value type, duplicate keys or tensor names,
//                        n_dims > 4, a bad general.alignment, a dimension that is not a multiple of the block size
//   IMP_ERR_BAD_OFFSETS  tensor data misaligned, past the end of the file, or overlapping another tensor
//   IMP_ERR_TENSOR_DTYPE a ggml type id this reader does not know
//   IMP_ERR_IO           the file cannot be opened or mapped
// Metadata of every value type is kept, arrays (also nested ones) included; tensor data stays in the mapping.
#pragma once

#include "core/file.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace imp::gguf {

enum class ValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11,
  F64 = 12,
};
const char* value_type_name(ValueType t);

struct Value {
  ValueType type = ValueType::U8;
  // Scalars: integers in u (unsigned) / i (signed), floats in f, bools in u (0/1).
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;  // STRING
  // ARRAY: n elements of elem. Scalar elements stay in the file (raw, n * size bytes, little-endian); string and
  // array elements are parsed into items.
  ValueType elem = ValueType::U8;
  uint64_t n = 0;
  const unsigned char* raw = nullptr;
  std::vector<Value> items;

  bool is_int() const;    // any integer type (not bool)
  bool is_float() const;  // F32 or F64
  // The value as an integer / number, if it is one and (for as_int) fits in int64.
  std::optional<int64_t> as_int() const;
  std::optional<double> as_number() const;
  // Element idx of a scalar array as an integer / number (nullopt if out of range or not numeric).
  std::optional<int64_t> int_at(uint64_t idx) const;
  std::optional<double> number_at(uint64_t idx) const;
};

struct TensorInfo {
  std::string name;
  uint32_t type = 0;  // ggml type id
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension
  uint64_t offset = 0;           // relative to the data section
  uint64_t nbytes = 0;
  const unsigned char* data = nullptr;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_str() const;  // "[ne0, ne1, ...]"
};

class File {
 public:
  // Maps and parses path. Throws (see above).
  static std::unique_ptr<File> open(const std::string& path);
  // Parses a buffer the caller keeps alive (fuzzing, tests); `name` is used in messages.
  static std::unique_ptr<File> parse(const unsigned char* data, size_t size, const std::string& name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& name() const { return name_; }

  const Value* find(const std::string& key) const;
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  // The encoded bytes of metadata entry idx's value (after its type id), as they are in the file.
  std::string raw_value(size_t idx) const;
  const TensorInfo* tensor(const std::string& name) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  File() = default;
  void parse_all(const unsigned char* data, size_t size);

  MappedFile file_;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<std::pair<const unsigned char*, size_t>> kv_raw_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// True if the first bytes of path are the GGUF magic (false for directories, short or unreadable files).
bool has_gguf_magic(const std::string& path);

}  // namespace imp::gguf
