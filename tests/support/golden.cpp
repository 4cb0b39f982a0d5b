#include "support/golden.h"

#include "core/file.h"
#include "core/json.h"
#include "model/safetensors.h"

#include <cstring>
#include <stdexcept>

namespace imp::test {

const GoldenTensor& Golden::tensor(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw std::runtime_error(dir + ": golden tensor " + name + " is missing");
  return it->second;
}

std::string fixtures_dir() { return IMP_FIXTURES_DIR; }

namespace {
std::vector<int32_t> ids(const JsonValue& root, const char* key) {
  std::vector<int32_t> out;
  if (auto v = root.find(key))
    for (JsonValue e : v->elements()) out.push_back(int32_t(e.as_int(key)));
  return out;
}
}  // namespace

Golden load_golden(const std::string& name) {
  Golden g;
  g.dir = join_path(fixtures_dir(), name);
  std::string jpath = join_path(g.dir, "golden.json");
  JsonDocument doc = JsonDocument::parse(read_file(jpath), jpath);
  g.prompt = ids(doc.root(), "prompt");
  g.greedy = ids(doc.root(), "greedy");
  g.mtp_chain_tokens = ids(doc.root(), "mtp_chain_tokens");
  SafeTensors st;
  st.add_file(join_path(g.dir, "golden.safetensors"));
  for (const auto& [tname, t] : st.tensors()) {
    if (t.dtype != DType::F32) continue;
    GoldenTensor gt;
    gt.shape = t.shape;
    gt.data.resize(t.nbytes / 4);
    std::memcpy(gt.data.data(), t.data, t.nbytes);
    g.tensors.emplace(tname, std::move(gt));
  }
  return g;
}

}  // namespace imp::test
