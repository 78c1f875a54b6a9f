#include "train/cuda/cuda_train_bench.h"

#include <cuda_runtime.h>

#include <chrono>

#include "backend/cuda/cuda_check.h"
#include "core/rng.h"
#include "model/cuda/cuda_train_model.h"
#include "train/dist/communicator.h"
#include "train/optimizer.h"

namespace brisk::train {

double lora_train_flops_per_token(const ModelConfig& c, const LoraSpec& s, int64_t seq) {
  double base = 0, lora = 0;
  for (int j = 0; j < kNumProj; ++j) {
    const double in = double(proj_in(c, Proj(j))), out = double(proj_out(c, Proj(j)));
    base += in * out;
    if (s.targets[size_t(j)]) lora += double(s.r) * (in + out);
  }
  base *= double(c.num_layers);
  lora *= double(c.num_layers);
  const double head = double(c.hidden_size) * double(c.vocab_size);
  const double avg_ctx = (double(seq) + 1.0) / 2.0;
  const double attn_fwd = 4.0 * avg_ctx * double(c.num_heads * c.head_dim) * double(c.num_layers);
  return 4.0 * base + 4.0 * head + 6.0 * lora + 3.5 * attn_fwd;
}

double full_train_flops_per_token(const ModelConfig& c, int64_t seq) {
  double base = 0;
  for (int j = 0; j < kNumProj; ++j) base += double(proj_in(c, Proj(j))) * double(proj_out(c, Proj(j)));
  base *= double(c.num_layers);
  const double head = double(c.hidden_size) * double(c.vocab_size);
  return lora_train_flops_per_token(c, LoraSpec{}, seq) + 2.0 * base + 2.0 * head;
}

nlohmann::json run_cuda_train_bench(const CudaTrainBenchArgs& a) {
  using clock = std::chrono::steady_clock;
  const ModelConfig& c = a.model;
  const int64_t T = a.batch * a.seq;
  const std::string why = cuda::cuda_training_unavailable_reason();
  BRISK_CHECK(why.empty(), "--device cuda: ", why);
  BRISK_CUDA_CHECK(cudaFree(nullptr));  // create the context before measuring memory
  const size_t used0 = cuda::CudaTrainModel::device_used_bytes();
  cuda::CudaTrainModel gpu = a.full ? cuda::CudaTrainModel(c, a.recompute, T, 1)
                                    : cuda::CudaTrainModel(c, a.lora, a.recompute, T, 1);
  const size_t used_alloc = cuda::CudaTrainModel::device_used_bytes();

  const int world = a.comm ? a.comm->size() : 1, rank = a.comm ? a.comm->rank() : 0;
  TokenBatch b = random_token_batch(c.vocab_size, a.batch, a.seq, 5 + uint64_t(rank));
  const float scale = 1.0f / float(b.label_count());
  size_t peak = used_alloc;
  double loss = 0;
  auto step = [&] {
    loss = gpu.forward_backward(b, scale, 1) * double(scale);
    peak = std::max(peak, cuda::CudaTrainModel::device_used_bytes());
    if (a.comm) {  // as train/dist/data_parallel.cpp: the backward's writes, then one all-reduce
      gpu.synchronize();
      a.comm->all_reduce_sum(gpu.grad_arena(), gpu.grad_arena_floats());
    }
    gpu.clip_grad_norm(1.0);
    gpu.optimizer_step({1e-4, 0.9, 0.999, 1e-8, 0.0});
  };
  step();  // warm-up: cuBLASLt plans, first-touch
  BRISK_CUDA_CHECK(cudaDeviceSynchronize());
  auto t0 = clock::now();
  for (int64_t i = 0; i < a.steps; ++i) step();
  BRISK_CUDA_CHECK(cudaDeviceSynchronize());
  const double dt = std::chrono::duration<double>(clock::now() - t0).count() / double(a.steps);
  peak = std::max(peak, cuda::CudaTrainModel::device_used_bytes());

  const double tps = double(T) * double(world) / dt;
  const double flops = a.full ? full_train_flops_per_token(c, a.seq) : lora_train_flops_per_token(c, a.lora, a.seq);
  const double gib = double(1ull << 30);
  const double plan = double(gpu.plan().total());
  const double measured = double(peak - used0);
  cudaDeviceProp prop{};
  int dev = 0;
  cudaGetDevice(&dev);
  cudaGetDeviceProperties(&prop, dev);
  const char* rc = a.recompute == Recompute::None ? "none" : a.recompute == Recompute::Selective ? "selective" : "full";
  return {{"bench", "train"}, {"device", "cuda"}, {"gpu", prop.name}, {"batch", a.batch}, {"seq", a.seq},
          {"method", a.full ? "full" : "lora"}, {"lora_r", a.full ? 0 : a.lora.r}, {"recompute", rc}, {"step_s", dt}, {"tokens_per_s", tps},
          {"tflops", tps / double(world) * flops / 1e12},  // per GPU
          {"flops_per_token", flops}, {"loss", loss},
          {"peak_gib", measured / gib}, {"plan_gib", plan / gib}, {"peak_over_plan", measured / plan},
          {"gpus", world}, {"tokens_per_s_per_gpu", tps / double(world)}};
}

}  // namespace brisk::train
