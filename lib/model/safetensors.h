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

// Element types of weight data. F32/F16/BF16 come from SafeTensors or GGUF; the block-quantized types (ggml's
// layouts, see gguf/quants.h) only from GGUF. A row of a quantized matrix is a whole number of blocks.
enum class DType { F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K, Other };
size_t dtype_size(DType dtype);         // bytes per element; 0 for block-quantized types and Other
size_t dtype_block_size(DType dtype);   // elements per block (1 for plain types, 0 for Other)
size_t dtype_block_bytes(DType dtype);  // bytes per block
size_t row_bytes(DType dtype, size_t n);  // bytes of n elements (n a multiple of the block size)
bool dtype_is_quantized(DType dtype);
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
