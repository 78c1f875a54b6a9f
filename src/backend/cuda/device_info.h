// CUDA device discovery (compiled only when BRISK_HAVE_CUDA).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

typedef struct CUstream_st* cudaStream_t;

namespace brisk::cuda {

struct DeviceInfo {
  int index;
  std::string name;
  int cc_major, cc_minor;
  size_t total_bytes, free_bytes;
  int sm_count;
};

std::vector<DeviceInfo> list_devices();  // empty when no driver or no GPU
bool self_test();                        // runs the trivial kernel, checks its output
void launch_fill_iota(float* out, int n, float scale, cudaStream_t stream);

}  // namespace brisk::cuda
