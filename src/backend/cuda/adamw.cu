// AdamW: one thread per element. The scalars are computed on the host exactly as
// train/optimizer.cpp computes them (double, then rounded to float). In the kernel every
// multiply, add, divide and sqrt is an explicitly rounded intrinsic (__fmul_rn, ...) so that
// nvcc cannot contract them into FMAs; the one FMA is ATen's lerp, as on the CPU.
#include <algorithm>
#include <cmath>

#include "backend/cuda/adamw.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace brisk::cuda {
namespace {

constexpr int kThreads = 256;

struct Scalars {
  float decay_scale, m_weight, beta2, v_weight, bc2_sqrt, eps, neg_step_size;
  bool small_weight, decay;
};

__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, Scalars s) {
  for (int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; j < n; j += int64_t(gridDim.x) * blockDim.x) {
    float pj = p[j];
    if (s.decay) pj = __fmul_rn(pj, s.decay_scale);
    const float gj = g[j], mj = m[j];
    const float m_new = s.small_weight ? __fmaf_rn(s.m_weight, __fsub_rn(gj, mj), mj)
                                       : __fmaf_rn(__fsub_rn(s.m_weight, 1.0f), __fsub_rn(gj, mj), gj);
    float v_new = __fmul_rn(v[j], s.beta2);
    v_new = __fadd_rn(v_new, __fmul_rn(__fmul_rn(s.v_weight, gj), gj));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v_new), s.bc2_sqrt), s.eps);
    p[j] = __fadd_rn(pj, __fdiv_rn(__fmul_rn(s.neg_step_size, m_new), denom));
    m[j] = m_new;
    v[j] = v_new;
  }
}

}  // namespace

void launch_adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h, int64_t step,
                  bool decay, cudaStream_t stream) {
  BRISK_CHECK(h.lr >= 0, "AdamW: invalid learning rate ", h.lr);
  BRISK_CHECK(h.eps >= 0, "AdamW: invalid epsilon ", h.eps);
  BRISK_CHECK(h.beta1 >= 0 && h.beta1 < 1, "AdamW: invalid beta1 ", h.beta1, " (must be in [0, 1))");
  BRISK_CHECK(h.beta2 >= 0 && h.beta2 < 1, "AdamW: invalid beta2 ", h.beta2, " (must be in [0, 1))");
  BRISK_CHECK(h.weight_decay >= 0, "AdamW: invalid weight_decay ", h.weight_decay);
  BRISK_ASSERT(step >= 1 && n >= 0, "adamw: step ", step, ", ", n, " elements");
  if (n == 0) return;
  // Host arithmetic as in optimizer.cpp (this host code is built without -mfma, so nothing
  // here is contracted either).
  const double t = double(step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(h.beta2, t));
  Scalars s;
  s.decay_scale = float(1.0 - h.lr * h.weight_decay);
  s.m_weight = float(1.0 - h.beta1);
  s.beta2 = float(h.beta2);
  s.v_weight = float(1.0 - h.beta2);
  s.bc2_sqrt = float(bias_correction2_sqrt);
  s.eps = float(h.eps);
  s.neg_step_size = float(-(h.lr / bias_correction1));
  s.small_weight = std::fabs(s.m_weight) < 0.5f;  // ATen's lerp switches formula at weight 0.5
  s.decay = decay && h.weight_decay != 0.0;
  const unsigned blocks = unsigned(std::min<int64_t>((n + kThreads - 1) / kThreads, 65536));
  adamw_kernel<<<blocks, kThreads, 0, stream>>>(param, grad, m, v, n, s);
  check_launch("adamw_kernel");
}

}  // namespace brisk::cuda
