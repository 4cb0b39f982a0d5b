// The C ABI of logging: imp_set_log_callback(). The engine logs through imp::log() (core/log.h).
#include "api/guard.h"
#include "core/log.h"

using imp::fail;
using imp::guard;

#ifndef IMP_VERSION_STRING
#define IMP_VERSION_STRING "0.0.0"
#endif

extern "C" {

imp_status imp_set_log_callback(imp_log_callback callback, void* user_data, imp_log_level max_level) {
  return guard([&] {
    if (int(max_level) < int(IMP_LOG_ERROR) || int(max_level) > int(IMP_LOG_DEBUG))
      fail(IMP_ERR_INVALID_ARGUMENT, "max_level is ", int(max_level), ", expected IMP_LOG_ERROR (0) .. IMP_LOG_DEBUG (3)");
    if (!imp::set_log_sink(callback, user_data, max_level))
      fail(IMP_ERR_BAD_STATE, "imp_set_log_callback was called from inside a log callback");
    imp::log(IMP_LOG_DEBUG, "libimp ", IMP_VERSION_STRING, ": log callback set, max level ", int(max_level));
  });
}

}  // extern "C"
