// Test support: the transformers goldens in tests/fixtures/<name>/ (see tools/fixtures/README.md):
// golden.json (prompt, greedy tokens, margins) and golden.safetensors (F32 logits / hidden states).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace imp::test {

struct GoldenTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
  const float* row(int64_t r) const { return data.data() + r * cols(); }
};

struct Golden {
  std::string dir;
  std::vector<int32_t> prompt;
  std::vector<int32_t> greedy;
  std::vector<int32_t> mtp_chain_tokens;
  std::map<std::string, GoldenTensor> tensors;
  const GoldenTensor& tensor(const std::string& name) const;  // throws if absent
  bool has(const std::string& name) const { return tensors.count(name) != 0; }
};

std::string fixtures_dir();
Golden load_golden(const std::string& fixture_name);

}  // namespace imp::test
