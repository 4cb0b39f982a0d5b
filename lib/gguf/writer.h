// A GGUF v3 writer (little-endian): metadata of every value type and tensors in any ggml type, laid out with
// general.alignment (default 32). Used by the converter and by tests that build well-formed and hostile files.
#pragma once

#include "gguf/gguf.h"

#include <cstdint>
#include <string>
#include <vector>

namespace imp::gguf {

class Writer {
 public:
  explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {
    if (alignment != 32) add_u32("general.alignment", alignment);
  }

  void add_u8(const std::string& key, uint8_t v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_u64(const std::string& key, uint64_t v);
  void add_f32(const std::string& key, float v);
  void add_f64(const std::string& key, double v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  // A raw value: type id and its encoded bytes (for nested arrays and hostile tests).
  void add_raw(const std::string& key, uint32_t type, const std::string& encoded);

  // ne[0] innermost. data must hold exactly the bytes the type and shape need (checked).
  void add_tensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, std::vector<unsigned char> data);

  // The whole file as bytes / written to path (throws IMP_ERR_IO).
  std::string bytes() const;
  void write(const std::string& path) const;

  // Encoders for add_raw.
  static std::string enc_u32(uint32_t v);
  static std::string enc_u64(uint64_t v);
  static std::string enc_str(const std::string& s);

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::vector<unsigned char> data;
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, std::string>> kv_;  // key, (type u32 + encoded value)
  std::vector<Tensor> tensors_;
};

}  // namespace imp::gguf
