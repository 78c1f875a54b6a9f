// Alternative paths of the CPU training ops (backend/ops.h, "Training ops"), exposed so tests
// can exercise the path a build does not choose by default.
#pragma once
#include "core/tensor.h"

namespace brisk::ops::cpu {

// matmul_backward_x / matmul_backward_w without BLAS: the operands are transposed into scratch
// and multiplied by cpu::matmul_fallback. Same contracts as the public ops.
void matmul_backward_x_fallback(const Tensor& dy, const Tensor& w, Tensor dx, bool accumulate);
void matmul_backward_w_fallback(const Tensor& dy, const Tensor& x, Tensor dw, bool accumulate);

}  // namespace brisk::ops::cpu
