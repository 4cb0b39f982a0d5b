// Programmatic dependent launch (PDL, sm_90 and newer), CUDA sources only.
//
// A decode step is ~400 kernels in a row, most of them 5-70 us long. Between two of them the GPU drains the first
// (its last blocks run on a few SMs) and then ramps the second up from its launch; on the weight-streaming GEMVs
// that gap is HBM time lost. With PDL a kernel is launched while its predecessor still runs: its blocks start as
// SMs free up, do what does not depend on the predecessor (index math, setup), and wait in
// pdl_wait() until the predecessor has completed and its writes are visible. Rules for a kernel launched with
// launch_pdl:
//   - pdl_wait() before its first read of anything an earlier kernel wrote, and before its first global write
//     (an earlier kernel may still be reading that buffer); only data no kernel writes (weights) may be read before.
//   - pdl_trigger() lets the next kernel launch early; without it the next starts when this one's blocks exit.
// A kernel with pdl_wait() launched the ordinary way, or on a device before sm_90, behaves as before: the wait
// returns at once. IMP_PDL=0 turns the attribute off (A/B benchmarks). CUDA graphs record the launches as
// programmatic edges.
#ifndef IMP_KERNELS_LAUNCH_CUH_
#define IMP_KERNELS_LAUNCH_CUH_

#ifndef __CUDACC__
#error "launch.cuh is for CUDA sources only"
#endif

#include <cuda_runtime.h>

#include <utility>

namespace imp::kernels {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launches on the current device get the PDL attribute (compute capability 9.0 and newer, IMP_PDL != 0).
bool pdl_enabled();

// kernel<<<grid, block, smem, stream>>>(args...) with the programmatic-serialisation attribute when pdl_enabled().
template <typename... Params, typename... Args>
cudaError_t launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

}  // namespace imp::kernels

#endif  // IMP_KERNELS_LAUNCH_CUH_
