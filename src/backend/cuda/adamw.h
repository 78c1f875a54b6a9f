// Fused AdamW step on the GPU: f32 parameters, gradients and moments, updated in place.
// Exactly torch.optim.AdamW's update as src/train/optimizer.cpp replicates it (decoupled weight
// decay first, lerp for the first moment, bias corrections, eps added to sqrt(v_hat)), with the
// same float rounding step by step: the result matches the CPU optimizer bit for bit.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

namespace brisk::cuda {

struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// One step (step = t, 1-based, the optimizer's step count after incrementing) on n elements.
// decay: whether weight decay applies to this tensor (not to biases and norm weights).
// Throws brisk::Error on hyperparameters torch.optim.AdamW rejects.
void launch_adamw(float* param, const float* grad, float* m, float* v, int64_t n, const AdamWHyper& h, int64_t step,
                  bool decay, cudaStream_t stream);

}  // namespace brisk::cuda
