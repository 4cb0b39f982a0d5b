// The C ABI of logging: imp_set_log_callback(). The engine logs through imp::log() (core/log.h).
#include "api/guard.h"
#include "core/log.h"

using imp::fail;
using imp::guard;

#ifndef IMP_VERSION_STRING
#define IMP_VERSION_STRING "0.0.0"
#endif

extern "C" {

imp_status imp_set_log_callback(imp_log_callback callback, void* user_data, imp_log_level max_level_arg) {
  return guard([&] {
    const int32_t bits = imp::enum_bits(max_level_arg);
    if (bits < int32_t(IMP_LOG_ERROR) || bits > int32_t(IMP_LOG_DEBUG))
      fail(IMP_ERR_INVALID_ARGUMENT, "max_level is ", bits, ", expected IMP_LOG_ERROR (0) .. IMP_LOG_DEBUG (3)");
    const imp_log_level max_level = static_cast<imp_log_level>(bits);
    if (!imp::set_log_sink(callback, user_data, max_level))
      fail(IMP_ERR_BAD_STATE, "imp_set_log_callback was called from inside a log callback");
    imp::log(IMP_LOG_DEBUG, "libimp ", IMP_VERSION_STRING, ": log callback set, max level ", int(max_level));
  });
}

}  // extern "C"
