// The ABI boundary: every exported function runs its body through guard(), which turns imp::Error and any
// other exception into an imp_status and the thread's last-error message. Nothing throws across the boundary.
#pragma once

#include "core/error.h"

#include <new>

namespace imp {

template <typename Body>
imp_status guard(Body&& body) noexcept {
  try {
    clear_last_error();
    body();
    return IMP_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return IMP_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string("internal error: ") + e.what());
    return IMP_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return IMP_ERR_INTERNAL;
  }
}

template <typename T>
void require(const T* p, const char* what) {
  if (!p) fail(IMP_ERR_NULL_ARGUMENT, what, " is NULL");
}

}  // namespace imp
