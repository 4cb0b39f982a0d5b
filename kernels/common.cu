#include "common.cuh"
#include "launch.cuh"

#include <cstdlib>
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

bool pdl_enabled() {
  static const bool env_on = [] {
    const char* v = std::getenv("IMP_PDL");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  constexpr int kDevices = 64;
  static int major[kDevices] = {};  // 0: not asked yet; filled once per device (benign race: same value)
  int device = 0;
  if (!env_on || cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kDevices) return false;
  if (major[device] == 0 && cudaDeviceGetAttribute(&major[device], cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return false;
  return major[device] >= 9;
}

}  // namespace imp::kernels
