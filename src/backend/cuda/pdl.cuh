// Programmatic dependent launch (Hopper, sm_90): lets a kernel's blocks start while the kernel
// before it on the stream is still finishing, so a decode step's chain of short, memory-bound
// kernels does not pay a launch gap and a cold start between every two of them.
//
// Protocol (every kernel launched through launch_programmatic follows it):
//   - it may read only constant data (weights) before pdl_wait(): e.g. prefetch its weights;
//   - pdl_wait() returns once the previous kernel on the stream has completed and its writes
//     are visible, so everything after it is ordered exactly as without PDL;
//   - it calls pdl_trigger() early, which allows the NEXT kernel's blocks to be scheduled (they
//     then sit in their own pdl_wait() until this kernel has completed).
// Completion is transitive (a kernel completes only after its own pdl_wait() returned), so a
// kernel also sees every write of the kernels before its predecessor. Kernels launched the
// ordinary way, or a non-kernel predecessor, serialise as usual; both instructions are no-ops
// when the launch carried no programmatic attribute. Stream capture records the programmatic
// edges, so CUDA graphs replay them. BRISK_CUDA_PDL=0 in the environment turns the attribute
// off (A/B measurements; results are identical either way).
#pragma once
#include <cstdlib>
#include <cstring>
#include <utility>

#include <cuda_runtime.h>

#include "backend/cuda/cuda_check.h"

namespace brisk::cuda {

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

inline bool programmatic_launch_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("BRISK_CUDA_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

// kernel<<<grid, block, smem, stream>>>(args...) with the programmatic-serialisation attribute.
template <typename... Params, typename... Args>
void launch_programmatic(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                         cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = programmatic_launch_enabled() ? 1 : 0;
  const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
  if (e != cudaSuccess) throw_cuda_error(e, name, __FILE__, __LINE__);
  check_launch(name);
}

}  // namespace brisk::cuda
