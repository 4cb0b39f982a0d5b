// Errors inside the engine: C++ code throws imp::Error(status, message); the C ABI layer (lib/api/) catches it,
// stores the message in the calling thread's last-error slot and returns the status. Nothing throws across the
// ABI boundary.
#pragma once

#include <imp/imp.h>

#include <sstream>
#include <stdexcept>
#include <string>

namespace imp {

class Error : public std::runtime_error {
 public:
  Error(imp_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  imp_status status() const { return status_; }

 private:
  imp_status status_;
};

// fail(IMP_ERR_BAD_CONFIG, "hidden_size is ", h, ", expected > 0") builds the message from its parts.
template <typename... Parts>
[[noreturn]] void fail(imp_status status, const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(status, os.str());
}

// The calling thread's last-error message (what imp_last_error() returns).
void set_last_error(const std::string& message);
void clear_last_error();
const char* last_error();

}  // namespace imp
