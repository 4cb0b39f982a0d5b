#include "core/file.h"

#include "core/error.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#ifdef _WIN32
// Windows (the mingw-w64 build, packaging/mingw-w64.cmake): CreateFileA + CreateFileMapping/MapViewOfFile.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace imp {

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

#ifdef _WIN32

namespace {

// "Access is denied." etc. for GetLastError(), without the trailing CR LF.
std::string win_error(DWORD code) {
  char buf[256];
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, code, 0, buf,
                           sizeof buf, nullptr);
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n' || buf[n - 1] == '.')) --n;
  return n ? std::string(buf, n) : "error " + std::to_string(code);
}

HANDLE open_read(const std::string& path) {
  HANDLE h = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, nullptr);
  if (h == INVALID_HANDLE_VALUE) fail(IMP_ERR_IO, "cannot open ", path, ": ", win_error(GetLastError()));
  return h;
}

}  // namespace

std::string read_file(const std::string& path) {
  HANDLE h = open_read(path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    DWORD n = 0;
    if (!ReadFile(h, buf, sizeof buf, &n, nullptr)) {
      DWORD e = GetLastError();
      CloseHandle(h);
      fail(IMP_ERR_IO, "cannot read ", path, ": ", win_error(e));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  CloseHandle(h);
  return out;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  HANDLE h = open_read(path);
  LARGE_INTEGER size;
  if (GetFileType(h) != FILE_TYPE_DISK || !GetFileSizeEx(h, &size)) {
    CloseHandle(h);
    fail(IMP_ERR_IO, "cannot map ", path, ": not a regular file");
  }
  size_ = size_t(size.QuadPart);
  if (size_ > 0) {
    HANDLE m = CreateFileMappingA(h, nullptr, PAGE_READONLY, 0, 0, nullptr);
    void* p = m ? MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0) : nullptr;
    DWORD e = GetLastError();
    if (m) CloseHandle(m);  // the view keeps the mapping alive
    if (!p) {
      CloseHandle(h);
      fail(IMP_ERR_IO, "cannot map ", path, ": ", win_error(e));
    }
    data_ = static_cast<const unsigned char*>(p);
  }
  CloseHandle(h);
}

static void unmap(const unsigned char* data, size_t) { UnmapViewOfFile(data); }

#else  // POSIX

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(IMP_ERR_IO, "cannot open ", path, ": ", std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      fail(IMP_ERR_IO, "cannot read ", path, ": ", std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  ::close(fd);
  return out;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(IMP_ERR_IO, "cannot open ", path, ": ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(IMP_ERR_IO, "cannot map ", path, ": not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(IMP_ERR_IO, "cannot map ", path, ": ", std::strerror(e));
    }
    data_ = static_cast<const unsigned char*>(p);
  }
  ::close(fd);
}

static void unmap(const unsigned char* data, size_t size) { ::munmap(const_cast<unsigned char*>(data), size); }

#endif

MappedFile::MappedFile(MappedFile&& o) noexcept : data_(o.data_), size_(o.size_), path_(std::move(o.path_)) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) unmap(data_, size_);
    data_ = o.data_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) unmap(data_, size_);
}

}  // namespace imp
