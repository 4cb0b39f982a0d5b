#include "core/log.h"

#include <atomic>
#include <mutex>

namespace imp {

namespace {
// One sink for the process. The mutex guards the pair and is held while the callback runs: messages from many
// threads reach the callback one at a time, and set_log_sink() cannot return while the old callback still runs.
std::mutex g_mutex;
imp_log_callback g_callback = nullptr;
void* g_user_data = nullptr;
std::atomic<int> g_max_level{-1};  // -1: no sink; read without the lock by log_enabled()
thread_local bool t_in_callback = false;
}  // namespace

bool log_enabled(imp_log_level level) noexcept {
  return int(level) <= g_max_level.load(std::memory_order_relaxed) && !t_in_callback;
}

void log_message(imp_log_level level, const char* message) noexcept {
  if (!log_enabled(level)) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_callback || int(level) > g_max_level.load(std::memory_order_relaxed)) return;
  t_in_callback = true;
  g_callback(level, message ? message : "", g_user_data);
  t_in_callback = false;
}

bool set_log_sink(imp_log_callback callback, void* user_data, imp_log_level max_level) noexcept {
  if (t_in_callback) return false;
  std::lock_guard<std::mutex> lock(g_mutex);
  g_callback = callback;
  g_user_data = user_data;
  g_max_level.store(callback ? int(max_level) : -1, std::memory_order_relaxed);
  return true;
}

}  // namespace imp
