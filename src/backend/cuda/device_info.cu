// The CUDA backend's first piece: device discovery plus one trivial kernel that proves the
// toolchain, the architecture flags and the launch checks work end to end.
#include <cuda_runtime.h>

#include "backend/cuda/device_info.h"
#include "core/error.h"

namespace brisk::cuda {

static void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(cat("CUDA error in ", what, ": ", cudaGetErrorString(e)));
}

__global__ void fill_iota_kernel(float* out, int n, float scale) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = scale * float(i);
}

void launch_fill_iota(float* out, int n, float scale, cudaStream_t stream) {
  fill_iota_kernel<<<(n + 255) / 256, 256, 0, stream>>>(out, n, scale);
  check(cudaGetLastError(), "fill_iota launch");
}

std::vector<DeviceInfo> list_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear: no driver or no device is not an error here
    return {};
  }
  std::vector<DeviceInfo> out;
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, i), "cudaGetDeviceProperties");
    size_t free_b = 0, total_b = 0;
    check(cudaSetDevice(i), "cudaSetDevice");
    check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
    out.push_back({i, p.name, p.major, p.minor, total_b, free_b, p.multiProcessorCount});
  }
  return out;
}

bool self_test() {
  const int n = 1000;
  float* d = nullptr;
  check(cudaMalloc(&d, n * sizeof(float)), "cudaMalloc");
  launch_fill_iota(d, n, 0.5f, nullptr);
  std::vector<float> h(n, -1.0f);
  check(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaFree(d), "cudaFree");
  for (int i = 0; i < n; ++i)
    if (h[i] != 0.5f * float(i)) return false;
  return true;
}

}  // namespace brisk::cuda
