// SafeTensors archives: a model directory's model.safetensors, or the shards listed by
// model.safetensors.index.json, memory-mapped read-only. Every header offset is checked against its file before
// any tensor is handed out; tensor data stays in the mapping in its stored dtype.
#pragma once

#include "core/file.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace imp {

enum class DType { F32, F16, BF16, Other };
size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

struct TensorInfo {
  std::string name;
  DType dtype = DType::Other;
  std::string dtype_text;            // as written in the header ("BF16", "I64", ...)
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;
  size_t nbytes = 0;
  std::string file;                  // the file it lives in, for messages
};

class SafeTensors {
 public:
  // Opens <dir>/model.safetensors or the shards of <dir>/model.safetensors.index.json. Throws IMP_ERR_IO,
  // IMP_ERR_BAD_HEADER, IMP_ERR_BAD_OFFSETS, IMP_ERR_BAD_JSON, IMP_ERR_MISSING_TENSOR (no weight files, or an
  // index entry its shard lacks).
  static SafeTensors open_dir(const std::string& dir);
  // Adds one file's tensors (later files may not redefine a name).
  void add_file(const std::string& path);

  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }

 private:
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorInfo> tensors_;
};

}  // namespace imp
