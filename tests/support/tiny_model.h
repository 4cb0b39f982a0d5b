// Test support: writes small random Qwen3.5-architecture checkpoints (config.json + model.safetensors) into a
// temporary directory, so error-path and state tests need no committed files. The golden tests use the
// transformers fixtures in tests/fixtures/ instead.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace imp::test {

struct TinyTensor {
  std::string dtype = "F32";  // F32, BF16, F16 or anything else (written as raw bytes of `data` size)
  std::vector<int64_t> shape;
  std::vector<float> values;  // converted to dtype on write
};

struct TinyModelOptions {
  bool moe = false;
  bool mtp = true;
  std::string dtype = "F32";
  uint32_t seed = 1;
  int vocab = 96, hidden = 32, layers = 4, n_head = 2, n_kv = 1, head_dim = 16;
  int k_heads = 1, v_heads = 2, k_dim = 8, v_dim = 8;
  int ff = 48, experts = 4, experts_used = 2, ff_expert = 16, ff_shared = 24;
};

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string tiny_config_json(const TinyModelOptions& o);
std::map<std::string, TinyTensor> tiny_tensors(const TinyModelOptions& o);
void write_safetensors(const std::string& path, const std::map<std::string, TinyTensor>& tensors);
void write_text(const std::string& path, const std::string& text);
// Writes config.json + model.safetensors for o into dir.
void write_tiny_model(const std::string& dir, const TinyModelOptions& o);

}  // namespace imp::test
