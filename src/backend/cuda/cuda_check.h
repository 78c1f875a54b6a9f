// Checks for every CUDA runtime call and every kernel launch (DESIGN.md §4): a failure becomes a
// one-line brisk::Error naming the call (or kernel), the CUDA error string and the source line.
// Host-side header: usable from .cpp and .cu files alike.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

namespace brisk::cuda {

// The failed call's error is also the runtime's "last error": it is cleared here, so a caller
// that recovers from a non-sticky failure (bad argument, out of memory) is not blamed for it again
// by the next check_launch. Sticky errors (a faulted kernel) stay: the context is unusable.
[[noreturn]] inline void throw_cuda_error(cudaError_t e, const char* expr, const char* file, int line) {
  (void)cudaGetLastError();
  throw Error(cat("CUDA error in ", expr, " (", file, ":", line, "): ", cudaGetErrorName(e), ": ",
                  cudaGetErrorString(e)));
}

// Call right after a kernel launch: reports bad launch configurations (grid, block, shared
// memory) and sticky errors from earlier asynchronous work. It does not wait for the kernel.
inline void check_launch(const char* kernel_name) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    throw Error(cat("CUDA kernel launch ", kernel_name, " failed: ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

}  // namespace brisk::cuda

#define BRISK_CUDA_CHECK(expr)                                                            \
  do {                                                                                    \
    const cudaError_t brisk_cuda_err_ = (expr);                                           \
    if (brisk_cuda_err_ != cudaSuccess)                                                   \
      ::brisk::cuda::throw_cuda_error(brisk_cuda_err_, #expr, __FILE__, __LINE__);        \
  } while (0)
