#include "common.cuh"

#include <cstring>

namespace imp::kernels {

namespace {
thread_local char g_detail[256] = "";
}  // namespace

const char* last_error_detail() { return g_detail; }

void set_error_detail(const char* message) {
  std::strncpy(g_detail, message, sizeof g_detail - 1);
  g_detail[sizeof g_detail - 1] = '\0';
}

void clear_error_detail() { g_detail[0] = '\0'; }

}  // namespace imp::kernels
