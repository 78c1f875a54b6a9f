// Helpers for the CUDA op-parity tests: random bf16/f32 inputs, poisoned outputs, and the
// max|a-b| / max|b| metric against the CPU reference ops.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/device_buffer.h"
#include "core/dtype.h"
#include "core/rng.h"

namespace brisk::ops_test {

using cuda::DeviceBuffer;

inline bool cuda_device_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver / no device: clear the error, report absence
    return false;
  }
  return n > 0;
}

// The only reason a gpu test may skip: there is no device to run on.
#define BRISK_REQUIRE_CUDA_DEVICE()                                                                  \
  do {                                                                                               \
    if (!::brisk::ops_test::cuda_device_present())                                                   \
      GTEST_SKIP() << "no CUDA device on this machine: run brisk_ops_tests on the GPU machine";      \
  } while (0)

constexpr uint16_t kBf16NaN = 0x7FC0;

// Random bf16 values in [lo, hi) (bit patterns), and their exact f32 values for the CPU op.
inline std::vector<uint16_t> random_bf16(Rng& rng, size_t n, float lo, float hi) {
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = f32_to_bf16(rng.uniform(lo, hi));
  return v;
}
inline std::vector<float> random_f32(Rng& rng, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = rng.uniform(lo, hi);
  return v;
}
inline std::vector<float> bf16_to_f32(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = brisk::bf16_to_f32(v[i]);
  return out;
}

template <typename T> DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer d(host.size() * sizeof(T));
  d.upload(host.data(), host.size() * sizeof(T));
  return d;
}
template <typename T> std::vector<T> from_device(const DeviceBuffer& d, size_t n) {
  cuda::synchronize();  // surfaces asynchronous kernel faults with a checked call
  std::vector<T> host(n);
  d.download(host.data(), n * sizeof(T));
  return host;
}
// Outputs start as NaN so that an element the kernel forgets to write fails the comparison.
inline DeviceBuffer poisoned_bf16(size_t n) { return to_device(std::vector<uint16_t>(n, kBf16NaN)); }
inline DeviceBuffer poisoned_f32(size_t n) { return to_device(std::vector<float>(n, NAN)); }

// max|got - want| / max|want|; infinite when either holds a NaN or an infinity (an unwritten or
// broken element). With want all zero it is the plain max|got - want|.
inline double max_rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) return INFINITY;
    diff = std::max(diff, std::fabs(double(got[i]) - double(want[i])));
    ref = std::max(ref, std::fabs(double(want[i])));
  }
  return ref > 0 ? diff / ref : diff;
}

// Prints the metric for the case and fails the test when it exceeds tol.
inline void expect_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                         double tol) {
  const double err = max_rel_err(got, want);
  std::printf("  %-52s max|a-b|/max|b| = %.3e  (tol %.0e)\n", what.c_str(), err, tol);
  EXPECT_LE(err, tol) << what;
}

inline std::string dims(const char* op, std::initializer_list<int64_t> d) {
  std::string s = std::string(op) + " [";
  for (auto it = d.begin(); it != d.end(); ++it) s += (it == d.begin() ? "" : ", ") + std::to_string(*it);
  return s + "]";
}

}  // namespace brisk::ops_test
