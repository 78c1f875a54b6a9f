// Entry points of the CPU backend beyond backend/ops.h: alternative paths that the public ops
// choose between, exposed so tests (and benchmarks) can exercise each one directly.
#pragma once
#include "core/tensor.h"

namespace brisk::ops::cpu {

// True when matmul uses OpenBLAS for n > 1 (built with BRISK_HAVE_BLAS).
bool have_blas();

// The matmul of backend/ops.h computed without BLAS: a GEMV for n == 1, otherwise a blocked,
// multithreaded register-tiled kernel. Same contract as ops::matmul.
void matmul_fallback(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate);

// The GEMV path (x has exactly one row), parallel over output rows.
void gemv(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate);

// matmul with a block-quantized w [N, K] (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; K whole blocks).
// n == 1: out[j] = quant::dot_row(w row j, x), parallel over j, one pass over the weights.
// n > 1: dequantizes bands of w rows to f32 and multiplies them (BLAS when available).
void matmul_quantized(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate);

// The rotation behind rope (sign +1) and rope_backward (sign -1, the transpose).
void rotate_pairs(Tensor x, const int32_t* positions, const float* inv_freq, int n_freq, float mscale, float sign);

}  // namespace brisk::ops::cpu
