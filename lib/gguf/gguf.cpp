#include "gguf/gguf.h"

#include "core/error.h"
#include "gguf/quants.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>

namespace imp::gguf {

namespace {

constexpr uint64_t kMaxAlignment = uint64_t(1) << 30;
constexpr int kMaxDepth = 8;  // nesting of arrays inside arrays

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8: case ValueType::I8: case ValueType::BOOL: return 1;
    case ValueType::U16: case ValueType::I16: return 2;
    case ValueType::U32: case ValueType::I32: case ValueType::F32: return 4;
    case ValueType::U64: case ValueType::I64: case ValueType::F64: return 8;
    default: return 0;
  }
}

bool known_type(uint32_t t) { return t <= uint32_t(ValueType::F64); }

// The fewest bytes one value of type t can occupy (for bounding counts before allocating).
size_t min_size(ValueType t) {
  if (t == ValueType::STRING) return 8;
  if (t == ValueType::ARRAY) return 12;
  return scalar_size(t);
}

class Reader {
 public:
  Reader(const unsigned char* data, size_t size, const std::string& name) : p_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  template <typename... Parts>
  [[noreturn]] void bad(imp_status s, const Parts&... parts) const {
    fail(s, name_, ": GGUF ", parts..., " (at byte ", pos_, " of ", size_, ")");
  }

  void need(size_t n, const char* what) const {
    if (left() < n) bad(IMP_ERR_BAD_HEADER, "truncated: ", what, " needs ", n, " bytes, ", left(), " left");
  }
  const unsigned char* take(size_t n, const char* what) {
    need(n, what);
    const unsigned char* q = p_ + pos_;
    pos_ += n;
    return q;
  }
  uint32_t u32(const char* what) {
    uint32_t v;
    std::memcpy(&v, take(4, what), 4);
    return v;
  }
  uint64_t u64(const char* what) {
    uint64_t v;
    std::memcpy(&v, take(8, what), 8);
    return v;
  }
  std::string str(const char* what) {
    uint64_t n = u64(what);
    if (n > left()) bad(IMP_ERR_BAD_HEADER, what, " length ", n, " runs past the end of the file");
    const unsigned char* q = take(size_t(n), what);
    return std::string(reinterpret_cast<const char*>(q), size_t(n));
  }

  Value value(ValueType t, int depth) {
    Value v;
    v.type = t;
    switch (t) {
      case ValueType::U8: v.u = *take(1, "u8 value"); break;
      case ValueType::I8: v.i = int8_t(*take(1, "i8 value")); break;
      case ValueType::BOOL: {
        uint8_t b = *take(1, "bool value");
        if (b > 1) bad(IMP_ERR_BAD_HEADER, "bool value ", int(b), " is neither 0 nor 1");
        v.u = b;
        break;
      }
      case ValueType::U16: { uint16_t x; std::memcpy(&x, take(2, "u16 value"), 2); v.u = x; break; }
      case ValueType::I16: { int16_t x; std::memcpy(&x, take(2, "i16 value"), 2); v.i = x; break; }
      case ValueType::U32: v.u = u32("u32 value"); break;
      case ValueType::I32: { int32_t x; std::memcpy(&x, take(4, "i32 value"), 4); v.i = x; break; }
      case ValueType::F32: { float x; std::memcpy(&x, take(4, "f32 value"), 4); v.f = x; break; }
      case ValueType::U64: v.u = u64("u64 value"); break;
      case ValueType::I64: { int64_t x; std::memcpy(&x, take(8, "i64 value"), 8); v.i = x; break; }
      case ValueType::F64: { double x; std::memcpy(&x, take(8, "f64 value"), 8); v.f = x; break; }
      case ValueType::STRING: v.str = str("string value"); break;
      case ValueType::ARRAY: {
        if (depth >= kMaxDepth) bad(IMP_ERR_BAD_HEADER, "arrays nested deeper than ", kMaxDepth);
        uint32_t et = u32("array element type");
        if (!known_type(et)) bad(IMP_ERR_BAD_HEADER, "unknown array element type ", et);
        v.elem = ValueType(et);
        v.n = u64("array length");
        if (v.n > left() / min_size(v.elem))
          bad(IMP_ERR_BAD_HEADER, "array of ", v.n, " ", value_type_name(v.elem), " elements runs past the end of the file");
        if (size_t s = scalar_size(v.elem)) {
          v.raw = take(size_t(v.n) * s, "array data");
        } else {
          v.items.reserve(size_t(v.n));
          for (uint64_t k = 0; k < v.n; ++k) v.items.push_back(value(v.elem, depth + 1));
        }
        break;
      }
    }
    return v;
  }

 private:
  const unsigned char* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

const char* value_type_name(ValueType t) {
  static const char* names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return uint32_t(t) <= 12 ? names[uint32_t(t)] : "unknown";
}

bool Value::is_int() const {
  switch (type) {
    case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16: case ValueType::U32:
    case ValueType::I32: case ValueType::U64: case ValueType::I64: return true;
    default: return false;
  }
}
bool Value::is_float() const { return type == ValueType::F32 || type == ValueType::F64; }

std::optional<int64_t> Value::as_int() const {
  switch (type) {
    case ValueType::U8: case ValueType::U16: case ValueType::U32: case ValueType::U64:
      if (u > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return int64_t(u);
    case ValueType::I8: case ValueType::I16: case ValueType::I32: case ValueType::I64: return i;
    default: return std::nullopt;
  }
}

std::optional<double> Value::as_number() const {
  if (is_float()) return f;
  if (auto v = as_int()) return double(*v);
  return std::nullopt;
}

std::optional<int64_t> Value::int_at(uint64_t idx) const {
  if (type != ValueType::ARRAY || !raw || idx >= n) return std::nullopt;
  const unsigned char* p = raw + idx * scalar_size(elem);
  switch (elem) {
    case ValueType::U8: return int64_t(p[0]);
    case ValueType::I8: return int64_t(int8_t(p[0]));
    case ValueType::U16: return int64_t(load<uint16_t>(p));
    case ValueType::I16: return int64_t(load<int16_t>(p));
    case ValueType::U32: return int64_t(load<uint32_t>(p));
    case ValueType::I32: return int64_t(load<int32_t>(p));
    case ValueType::U64: {
      uint64_t x = load<uint64_t>(p);
      if (x > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return int64_t(x);
    }
    case ValueType::I64: return load<int64_t>(p);
    default: return std::nullopt;
  }
}

std::optional<double> Value::number_at(uint64_t idx) const {
  if (type != ValueType::ARRAY || !raw || idx >= n) return std::nullopt;
  const unsigned char* p = raw + idx * scalar_size(elem);
  if (elem == ValueType::F32) return double(load<float>(p));
  if (elem == ValueType::F64) return load<double>(p);
  if (auto v = int_at(idx)) return double(*v);
  return std::nullopt;
}

std::string TensorInfo::shape_str() const {
  std::ostringstream os;
  os << "[";
  for (int d = 0; d < n_dims; ++d) os << (d ? ", " : "") << ne[d];
  os << "]";
  return os.str();
}

std::unique_ptr<File> File::open(const std::string& path) {
  std::unique_ptr<File> f(new File());
  f->file_ = MappedFile(path);
  f->name_ = path;
  f->parse_all(f->file_.data(), f->file_.size());
  return f;
}

std::unique_ptr<File> File::parse(const unsigned char* data, size_t size, const std::string& name) {
  std::unique_ptr<File> f(new File());
  f->name_ = name;
  f->parse_all(data, size);
  return f;
}

void File::parse_all(const unsigned char* buf, size_t size) {
  Reader r(buf, size, name_);
  if (size < 4 || std::memcmp(buf, "GGUF", 4) != 0) {
    if (size < 4) r.bad(IMP_ERR_BAD_HEADER, "file too short for the magic");
    r.bad(IMP_ERR_BAD_HEADER, "bad magic (not a GGUF file)");
  }
  r.take(4, "magic");
  version_ = r.u32("version");
  if (version_ == 1) r.bad(IMP_ERR_BAD_HEADER, "version 1 is not supported (v2 and v3 are)");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xFFFF) == 0 && version_ != 0) r.bad(IMP_ERR_BAD_HEADER, "version ", version_, " (a big-endian file? libimp reads little-endian GGUF)");
    r.bad(IMP_ERR_BAD_HEADER, "unsupported version ", version_, " (v2 and v3 are)");
  }
  const uint64_t n_tensors = r.u64("tensor count");
  const uint64_t n_kv = r.u64("metadata count");
  // A key-value pair takes at least 13 bytes (key length, type, a 1-byte value); a tensor info at least 24.
  if (n_kv > r.left() / 13) r.bad(IMP_ERR_BAD_HEADER, "metadata count ", n_kv, " is more than the file can hold");
  if (n_tensors > r.left() / 24) r.bad(IMP_ERR_BAD_HEADER, "tensor count ", n_tensors, " is more than the file can hold");

  kv_.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str("metadata key");
    if (key.empty()) r.bad(IMP_ERR_BAD_HEADER, "empty metadata key");
    const uint32_t t = r.u32("metadata value type");
    if (!known_type(t)) r.bad(IMP_ERR_BAD_HEADER, "metadata \"", key, "\" has unknown value type ", t);
    const size_t vstart = r.pos();
    Value v = r.value(ValueType(t), 0);
    kv_raw_.emplace_back(buf + vstart, r.pos() - vstart);
    if (kv_index_.count(key)) r.bad(IMP_ERR_BAD_HEADER, "duplicate metadata key \"", key, "\"");
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = find("general.alignment")) {
    auto al = a->as_int();
    if (!a->is_int() || !al || *al <= 0 || uint64_t(*al) > kMaxAlignment || (uint64_t(*al) & (uint64_t(*al) - 1)) != 0)
      r.bad(IMP_ERR_BAD_HEADER, "general.alignment must be a power-of-two integer in [1, 2^30]");
    alignment_ = uint64_t(*al);
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = r.str("tensor name");
    const uint32_t n_dims = r.u32("tensor n_dims");
    if (n_dims > 4) r.bad(IMP_ERR_BAD_HEADER, "tensor \"", t.name, "\" has ", n_dims, " dimensions (at most 4)");
    t.n_dims = int(n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t x = r.u64("tensor dimension");
      if (x > uint64_t(std::numeric_limits<int64_t>::max()) || (x != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / x))
        r.bad(IMP_ERR_BAD_HEADER, "tensor \"", t.name, "\" dimensions overflow");
      t.ne[d] = int64_t(x);
      numel *= x;
    }
    t.type = r.u32("tensor type");
    t.offset = r.u64("tensor offset");
    const TypeTraits* tt = type_traits(t.type);
    if (!tt) r.bad(IMP_ERR_TENSOR_DTYPE, "tensor \"", t.name, "\" has unknown ggml type ", t.type);
    if (t.ne[0] % tt->block != 0)
      r.bad(IMP_ERR_BAD_HEADER, "tensor \"", t.name, "\": row length ", t.ne[0], " is not a multiple of the ", tt->name, " block size ", tt->block);
    const uint64_t blocks = numel / tt->block;
    if (blocks > std::numeric_limits<uint64_t>::max() / tt->bytes) r.bad(IMP_ERR_BAD_HEADER, "tensor \"", t.name, "\" size overflows");
    t.nbytes = blocks * tt->bytes;
    if (tensor_index_.count(t.name)) r.bad(IMP_ERR_BAD_HEADER, "duplicate tensor name \"", t.name, "\"");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment (it may be absent when no tensor has data).
  const uint64_t end_of_header = r.pos();
  const uint64_t data_start = end_of_header + (alignment_ - end_of_header % alignment_) % alignment_;
  data_offset_ = data_start;
  const uint64_t data_size = data_start <= size ? size - data_start : 0;
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  for (TensorInfo& t : tensors_) {
    if (t.offset % alignment_ != 0)
      fail(IMP_ERR_BAD_OFFSETS, name_, ": GGUF tensor \"", t.name, "\" data offset ", t.offset, " is not a multiple of the alignment ", alignment_);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(IMP_ERR_BAD_OFFSETS, name_, ": GGUF tensor \"", t.name, "\" data [", t.offset, ", +", t.nbytes, ") lies outside the file's ",
           data_size, " data bytes");
    t.data = t.nbytes ? buf + data_start + t.offset : nullptr;
    if (t.nbytes) extents.emplace_back(t.offset, t.offset + t.nbytes);
  }
  std::sort(extents.begin(), extents.end());
  for (size_t k = 1; k < extents.size(); ++k)
    if (extents[k].first < extents[k - 1].second) fail(IMP_ERR_BAD_OFFSETS, name_, ": GGUF tensor data ranges overlap");
}

bool has_gguf_magic(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char m[4] = {0, 0, 0, 0};
  size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

}  // namespace imp::gguf

namespace imp::gguf {

const Value* File::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

std::string File::raw_value(size_t idx) const {
  if (idx >= kv_raw_.size()) return std::string();
  return std::string(reinterpret_cast<const char*>(kv_raw_[idx].first), kv_raw_[idx].second);
}

const TensorInfo* File::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace imp::gguf
