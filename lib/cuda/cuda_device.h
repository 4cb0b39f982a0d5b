// CUDA device discovery for backend selection (lib/api/). Built only with the CUDA backend (IMP_WITH_CUDA).
#pragma once

namespace imp {

// True when the CUDA runtime finds at least one device (false without a driver or a GPU; never throws).
bool cuda_device_available();

// Devices the CUDA runtime sees, 0 when none or no driver.
int cuda_device_count();

}  // namespace imp
