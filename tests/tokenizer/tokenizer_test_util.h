// Shared helpers of the tokenizer tests: a tiny hand-made tokenizer.json, the path of the real Qwen3 one, and
// reading the corpus and golden id files.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tokenizer_test {

inline std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

inline bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// IMP_QWEN3_TOKENIZER, else the place tools/fixtures/tokenizer/fetch_qwen3_tokenizer.sh writes to.
inline std::string qwen3_path() {
  if (const char* env = std::getenv("IMP_QWEN3_TOKENIZER"); env && *env) return env;
  return std::string(IMP_SOURCE_DIR) + "/tests/tokenizer/.cache/qwen3/tokenizer.json";
}

// Chunks of the corpus (separated by U+001E).
inline std::vector<std::string> corpus_chunks(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = text.find('\x1e', start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// A golden file: per chunk, an int32 count then the ids (little-endian; the test machines are little-endian).
inline bool read_golden(const std::string& path, std::vector<std::vector<int32_t>>* out) {
  std::string bytes = read_all(path);
  size_t p = 0;
  auto next = [&](int32_t* v) {
    if (p + 4 > bytes.size()) return false;
    std::memcpy(v, bytes.data() + p, 4);
    p += 4;
    return true;
  };
  out->clear();
  while (p < bytes.size()) {
    int32_t n;
    if (!next(&n) || n < 0) return false;
    std::vector<int32_t> ids(size_t(n), 0);
    for (auto& id : ids) {
      if (!next(&id)) return false;
    }
    out->push_back(std::move(ids));
  }
  return true;
}

}  // namespace tokenizer_test
