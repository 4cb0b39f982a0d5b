// Files: whole-file reads and read-only memory maps. Missing files throw IMP_ERR_NOT_FOUND-class errors chosen
// by the caller; other failures throw IMP_ERR_IO with the OS's reason.
#pragma once

#include <cstddef>
#include <string>

namespace imp {

bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);
std::string read_file(const std::string& path);  // throws IMP_ERR_IO

// A read-only private mapping of a whole file; movable, unmaps on destruction.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws IMP_ERR_IO
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace imp
