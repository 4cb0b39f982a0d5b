#include "model/safetensors.h"

#include "core/error.h"
#include "core/json.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace imp {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    default: return 0;
  }
}

size_t dtype_block_size(DType dtype) {
  switch (dtype) {
    case DType::F32: case DType::F16: case DType::BF16: return 1;
    case DType::Q8_0: return 32;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return 256;
    case DType::Other: return 0;
  }
  return 0;
}

size_t dtype_block_bytes(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::Q8_0: return 34;
    case DType::Q4_K: return 144;
    case DType::Q5_K: return 176;
    case DType::Q6_K: return 210;
    case DType::Other: return 0;
  }
  return 0;
}

size_t row_bytes(DType dtype, size_t n) {
  const size_t b = dtype_block_size(dtype);
  return b ? n / b * dtype_block_bytes(dtype) : 0;
}

bool dtype_is_quantized(DType dtype) { return dtype_block_size(dtype) > 1; }

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q5_K: return "Q5_K";
    case DType::Q6_K: return "Q6_K";
    case DType::Other: return "unsupported";
  }
  return "?";
}

namespace {

// Element sizes of the dtypes a header may name, so extents can be checked for tensors libimp never reads.
size_t any_dtype_size(const std::string& t) {
  if (t == "F64" || t == "I64" || t == "U64") return 8;
  if (t == "F32" || t == "I32" || t == "U32") return 4;
  if (t == "F16" || t == "BF16" || t == "I16" || t == "U16") return 2;
  if (t == "I8" || t == "U8" || t == "BOOL" || t == "F8_E4M3" || t == "F8_E5M2") return 1;
  return 0;
}

}  // namespace

void SafeTensors::add_file(const std::string& path) {
  auto file = std::make_unique<MappedFile>(path);
  const unsigned char* base = file->data();
  const size_t size = file->size();
  if (size < 8) fail(IMP_ERR_BAD_HEADER, path, ": truncated SafeTensors file (", size, " bytes, the header length alone is 8)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];  // little-endian u64
  if (header_len < 2 || header_len > size - 8)
    fail(IMP_ERR_BAD_HEADER, path, ": truncated SafeTensors header (says ", header_len, " bytes, file has ", size - 8, " after the length)");
  const size_t data_start = 8 + size_t(header_len);
  const size_t data_size = size - data_start;

  JsonDocument doc = JsonDocument::parse(std::string(reinterpret_cast<const char*>(base + 8), header_len), path + " (SafeTensors header)");
  JsonValue root = doc.root();
  if (!root.is_object()) fail(IMP_ERR_BAD_HEADER, path, ": SafeTensors header is not a JSON object");

  std::vector<std::pair<size_t, size_t>> extents;
  for (auto& [name, v] : root.members()) {
    if (name == "__metadata__") continue;
    auto bad = [&](const char* what) { fail(IMP_ERR_BAD_HEADER, path, ": tensor \"", name, "\": ", what); };
    if (!v.is_object()) bad("entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (!dt || !dt->is_string() || !sh || !sh->is_array() || !off || !off->is_array() || off->size() != 2)
      bad("needs dtype, shape and data_offsets [begin, end]");
    TensorInfo t;
    t.name = name;
    t.file = path;
    t.dtype_text = dt->as_string();
    t.dtype = t.dtype_text == "F32" ? DType::F32 : t.dtype_text == "F16" ? DType::F16 : t.dtype_text == "BF16" ? DType::BF16 : DType::Other;
    size_t elem = any_dtype_size(t.dtype_text);
    if (elem == 0) bad("unknown dtype");
    uint64_t numel = 1;
    for (JsonValue d : sh->elements()) {
      if (!d.is_number()) bad("shape entry is not a number");
      double x = d.as_number();
      if (x < 0 || x > 1e12 || x != double(int64_t(x))) bad("shape entry out of range");
      t.shape.push_back(int64_t(x));
      numel *= uint64_t(x);
      if (numel > (uint64_t(1) << 48)) bad("too many elements");
    }
    auto offs = off->elements();
    for (auto& o : offs)
      if (!o.is_number() || o.as_number() < 0 || o.as_number() != double(int64_t(o.as_number()))) bad("data_offsets are not non-negative integers");
    uint64_t begin = uint64_t(offs[0].as_number()), end = uint64_t(offs[1].as_number());
    if (end < begin || end > data_size)
      fail(IMP_ERR_BAD_OFFSETS, path, ": tensor \"", name, "\" data [", begin, ", ", end, ") lies outside the file's ", data_size, " data bytes");
    if (end - begin != numel * elem)
      fail(IMP_ERR_BAD_OFFSETS, path, ": tensor \"", name, "\" has ", end - begin, " bytes of data, its shape and dtype need ", numel * elem);
    t.data = base + data_start + begin;
    t.nbytes = size_t(end - begin);
    if (t.nbytes) extents.emplace_back(size_t(begin), size_t(end));
    if (tensors_.count(name)) fail(IMP_ERR_BAD_HEADER, path, ": tensor \"", name, "\" is defined twice");
    tensors_.emplace(name, std::move(t));
  }
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i)
    if (extents[i].first < extents[i - 1].second) fail(IMP_ERR_BAD_OFFSETS, path, ": tensor data ranges overlap");
  files_.push_back(std::move(file));
}

SafeTensors SafeTensors::open_dir(const std::string& dir) {
  SafeTensors st;
  std::string single = join_path(dir, "model.safetensors");
  std::string index = join_path(dir, "model.safetensors.index.json");
  if (path_exists(index)) {
    JsonDocument doc = JsonDocument::parse(read_file(index), index);
    auto map = doc.root().find("weight_map");
    if (!map || !map->is_object()) fail(IMP_ERR_BAD_HEADER, index, ": no \"weight_map\" object");
    std::set<std::string> shards;
    std::vector<std::pair<std::string, std::string>> entries;
    for (auto& [name, file] : map->members()) {
      std::string f = file.as_string("weight_map entry");
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        fail(IMP_ERR_BAD_HEADER, index, ": weight_map names an invalid shard \"", f, "\"");
      shards.insert(f);
      entries.emplace_back(name, f);
    }
    for (const std::string& f : shards) {
      std::string p = join_path(dir, f);
      if (!path_exists(p)) fail(IMP_ERR_IO, index, " lists shard ", f, ", which is missing");
      st.add_file(p);
    }
    for (auto& [name, f] : entries) {
      const TensorInfo* t = st.find(name);
      if (!t) fail(IMP_ERR_MISSING_TENSOR, index, " maps \"", name, "\" to ", f, ", which does not hold it");
    }
  } else if (path_exists(single)) {
    st.add_file(single);
  } else {
    fail(IMP_ERR_MISSING_TENSOR, "no model.safetensors or model.safetensors.index.json in ", dir);
  }
  return st;
}

const TensorInfo* SafeTensors::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace imp
