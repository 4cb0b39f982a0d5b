// The ABI boundary: every exported function runs its body through guard(), which turns imp::Error and any
// other exception into an imp_status and the thread's last-error message. Nothing throws across the boundary.
#pragma once

#include "core/error.h"
#include "core/log.h"

#include <cstdint>
#include <cstring>
#include <new>

namespace imp {

// Every failed call is also logged at IMP_LOG_ERROR (when a log callback is set).
inline imp_status failed(imp_status status, const std::string& message) noexcept {
  try {
    set_last_error(message);
  } catch (...) {
  }
  if (log_enabled(IMP_LOG_ERROR)) log(IMP_LOG_ERROR, imp_status_name(status), ": ", message);
  return status;
}

template <typename Body>
imp_status guard(Body&& body) noexcept {
  try {
    clear_last_error();
    body();
    return IMP_OK;
  } catch (const Error& e) {
    return failed(e.status(), e.what());
  } catch (const std::bad_alloc&) {
    return failed(IMP_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return failed(IMP_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return failed(IMP_ERR_INTERNAL, "internal error: unknown exception");
  }
}

// The bits of an enum argument as an int. A C caller may pass any int where imp.h says an enum; in C++ reading a
// value outside the enumerators' range through the enum type is undefined, so entry points look at the bits.
template <typename E>
int32_t enum_bits(const E& e) {
  static_assert(sizeof(E) == sizeof(int32_t), "imp.h enums travel as 32-bit ints");
  int32_t v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// A caller's params struct (NULL = the defaults): its size field must cover this version's layout (v1 is the
// oldest; a newer, longer struct is accepted and its extra fields are ignored). `name` and `defaults_fn` name the
// struct and its *_default_params() in the message.
template <typename P>
P read_params(const P* in, const P& defaults, const char* name, const char* defaults_fn) {
  if (!in) return defaults;
  if (in->size < sizeof(P))
    fail(IMP_ERR_INVALID_ARGUMENT, name, ".size is ", in->size, "; set it with ", defaults_fn, "()");
  P p;
  std::memcpy(&p, in, sizeof p);
  p.size = sizeof p;
  return p;
}

template <typename T>
void require(const T* p, const char* what) {
  if (!p) fail(IMP_ERR_NULL_ARGUMENT, what, " is NULL");
}

}  // namespace imp
