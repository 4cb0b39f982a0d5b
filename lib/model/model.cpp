#include "model/model.h"

#include "core/error.h"
#include "core/file.h"
#include "gguf/gguf.h"

namespace imp {

namespace {
bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::char_traits<char>::length(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}
}  // namespace

std::unique_ptr<Model> load_model(const std::string& path) {
  if (!path_exists(path)) fail(IMP_ERR_NOT_FOUND, "model path ", path, " does not exist");
  if (!is_directory(path)) {
    // A single file: GGUF by magic or by name (a .gguf with a bad magic gets the reader's specific error).
    if (gguf::has_gguf_magic(path) || ends_with(path, ".gguf")) return load_gguf_model(path);
    fail(IMP_ERR_NOT_FOUND, "model path ", path, " is neither a directory nor a GGUF file");
  }
  auto m = std::make_unique<Model>();
  m->path = path;
  m->config = load_config(path);
  m->files = SafeTensors::open_dir(path);
  m->weights = bind_weights(m->config, m->files);
  return m;
}

}  // namespace imp
