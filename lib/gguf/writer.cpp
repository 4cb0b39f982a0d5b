#include "gguf/writer.h"

#include "core/error.h"
#include "gguf/quants.h"

#include <cstring>
#include <fstream>

namespace imp::gguf {

namespace {
template <typename T>
std::string enc(T v) {
  std::string s(sizeof v, '\0');
  std::memcpy(&s[0], &v, sizeof v);
  return s;
}
}  // namespace

std::string Writer::enc_u32(uint32_t v) { return enc(v); }
std::string Writer::enc_u64(uint64_t v) { return enc(v); }
std::string Writer::enc_str(const std::string& s) { return enc(uint64_t(s.size())) + s; }

void Writer::add_raw(const std::string& key, uint32_t type, const std::string& encoded) {
  kv_.emplace_back(key, enc(type) + encoded);
}
void Writer::add_u8(const std::string& key, uint8_t v) { add_raw(key, uint32_t(ValueType::U8), enc(v)); }
void Writer::add_u32(const std::string& key, uint32_t v) { add_raw(key, uint32_t(ValueType::U32), enc(v)); }
void Writer::add_i32(const std::string& key, int32_t v) { add_raw(key, uint32_t(ValueType::I32), enc(v)); }
void Writer::add_u64(const std::string& key, uint64_t v) { add_raw(key, uint32_t(ValueType::U64), enc(v)); }
void Writer::add_f32(const std::string& key, float v) { add_raw(key, uint32_t(ValueType::F32), enc(v)); }
void Writer::add_f64(const std::string& key, double v) { add_raw(key, uint32_t(ValueType::F64), enc(v)); }
void Writer::add_bool(const std::string& key, bool v) { add_raw(key, uint32_t(ValueType::BOOL), enc(uint8_t(v))); }
void Writer::add_string(const std::string& key, const std::string& v) { add_raw(key, uint32_t(ValueType::STRING), enc_str(v)); }

void Writer::add_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  std::string s = enc(uint32_t(ValueType::I32)) + enc(uint64_t(v.size()));
  for (int32_t x : v) s += enc(x);
  add_raw(key, uint32_t(ValueType::ARRAY), s);
}
void Writer::add_f32_array(const std::string& key, const std::vector<float>& v) {
  std::string s = enc(uint32_t(ValueType::F32)) + enc(uint64_t(v.size()));
  for (float x : v) s += enc(x);
  add_raw(key, uint32_t(ValueType::ARRAY), s);
}
void Writer::add_string_array(const std::string& key, const std::vector<std::string>& v) {
  std::string s = enc(uint32_t(ValueType::STRING)) + enc(uint64_t(v.size()));
  for (const std::string& x : v) s += enc_str(x);
  add_raw(key, uint32_t(ValueType::ARRAY), s);
}

void Writer::add_tensor(const std::string& name, const std::vector<int64_t>& ne, uint32_t type, std::vector<unsigned char> data) {
  const TypeTraits* tt = type_traits(type);
  if (!tt) fail(IMP_ERR_INTERNAL, "GGUF writer: unknown type ", type, " for ", name);
  uint64_t numel = 1;
  for (int64_t d : ne) numel *= uint64_t(d);
  if (ne.empty() || ne[0] % tt->block != 0 || data.size() != numel / tt->block * tt->bytes)
    fail(IMP_ERR_INTERNAL, "GGUF writer: tensor ", name, " has ", data.size(), " bytes, its shape and type ", tt->name, " need ",
         numel / tt->block * tt->bytes);
  tensors_.push_back(Tensor{name, ne, type, std::move(data)});
}

std::string Writer::bytes() const {
  std::string out = "GGUF";
  out += enc(uint32_t(3));
  out += enc(uint64_t(tensors_.size()));
  out += enc(uint64_t(kv_.size()));
  for (auto& [k, v] : kv_) out += enc_str(k) + v;
  uint64_t offset = 0;
  auto pad = [&](uint64_t x) { return (alignment_ - x % alignment_) % alignment_; };
  for (const Tensor& t : tensors_) {
    out += enc_str(t.name);
    out += enc(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) out += enc(uint64_t(d));
    out += enc(t.type);
    out += enc(offset);
    offset += t.data.size() + pad(t.data.size());
  }
  out.append(size_t(pad(out.size())), '\0');
  for (const Tensor& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
    out.append(size_t(pad(t.data.size())), '\0');
  }
  return out;
}

void Writer::write(const std::string& path) const {
  std::string b = bytes();
  std::ofstream f(path, std::ios::binary);
  if (!f) fail(IMP_ERR_IO, "cannot create ", path);
  f.write(b.data(), std::streamsize(b.size()));
  if (!f) fail(IMP_ERR_IO, "cannot write ", path);
}

}  // namespace imp::gguf
