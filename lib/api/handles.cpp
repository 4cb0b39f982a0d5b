#include "api/handles.h"

#include "core/error.h"

#include <mutex>
#include <unordered_set>

namespace imp {

namespace {
std::mutex g_mu;
std::unordered_set<const void*>& live() {
  static std::unordered_set<const void*> set;  // never destroyed before a late free at exit
  return set;
}
}  // namespace

void register_handle(const void* h) {
  std::lock_guard<std::mutex> lock(g_mu);
  live().insert(h);
}

bool unregister_handle(const void* h) {
  std::lock_guard<std::mutex> lock(g_mu);
  return live().erase(h) == 1;
}

std::mutex& lifetime_mutex() {
  static std::mutex mu;
  return mu;
}

bool is_live(const void* h) {
  if (!h) return false;
  std::lock_guard<std::mutex> lock(g_mu);
  return live().count(h) == 1;
}

void require_live(const void* h, const char* what) {
  if (!h) fail(IMP_ERR_NULL_ARGUMENT, what, " is NULL");
  if (!is_live(h)) fail(IMP_ERR_INVALID_ARGUMENT, what, " is not a live handle (freed already, or not made by libimp)");
}

}  // namespace imp
