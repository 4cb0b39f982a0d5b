#include "model/model.h"

#include "core/error.h"
#include "core/file.h"

namespace imp {

std::unique_ptr<Model> load_model(const std::string& dir) {
  if (!path_exists(dir)) fail(IMP_ERR_NOT_FOUND, "model path ", dir, " does not exist");
  if (!is_directory(dir)) fail(IMP_ERR_NOT_FOUND, "model path ", dir, " is not a directory");
  auto m = std::make_unique<Model>();
  m->path = dir;
  m->config = load_config(dir);
  m->files = SafeTensors::open_dir(dir);
  m->weights = bind_weights(m->config, m->files);
  return m;
}

}  // namespace imp
