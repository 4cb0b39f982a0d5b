// Logging: imp::log(IMP_LOG_INFO, "loaded ", path, " (", n, " tensors)") hands one message to the callback set
// with imp_set_log_callback(), if any and if the level passes its threshold. With no callback (the default)
// libimp logs nothing and the call costs one relaxed atomic load. Never throws; callable from any thread.
#pragma once

#include <imp/imp.h>

#include <sstream>
#include <string>

namespace imp {

// True when a message of this level would reach a callback: test it before building an expensive message.
bool log_enabled(imp_log_level level) noexcept;

// Delivers message (NUL-terminated) to the callback. Calls made from inside the callback are dropped.
void log_message(imp_log_level level, const char* message) noexcept;

// Installs the process-wide sink (callback NULL = none). Waits for a running callback to return, so the old
// callback is never called after this returns. Returns false, changing nothing, when called from a callback.
bool set_log_sink(imp_log_callback callback, void* user_data, imp_log_level max_level) noexcept;

// log(IMP_LOG_WARN, "n_ctx ", n, " > n_ctx_train ", m) builds the message from its parts, as fail() does.
template <typename... Parts>
void log(imp_log_level level, const Parts&... parts) noexcept {
  if (!log_enabled(level)) return;
  try {
    std::ostringstream os;
    (os << ... << parts);
    log_message(level, os.str().c_str());
  } catch (...) {
    // Out of memory while formatting: the message is dropped, the caller goes on.
  }
}

}  // namespace imp
