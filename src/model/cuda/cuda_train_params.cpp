#include "model/cuda/cuda_train_params.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <map>

#include "backend/cuda/adamw.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/elementwise.h"
#include "core/error.h"
#include "model/train_memory.h"
#include "model/train_model.h"
#include "train/optimizer.h"

namespace brisk::cuda {

CudaFullParams::CudaFullParams(const ModelConfig& c, ModelWeights& working, bool train_embed, bool train_head,
                               cudaStream_t stream)
    : cfg_(c), stream_(stream) {
  const FullParamLayout layout = full_param_layout(c);
  floats_ = layout.floats;
  const size_t bytes = floats_ * sizeof(float);
  // One arena for the four: the plan counts full_param_arena_bytes (bytes + kArenaAlign) each.
  arena_ = DeviceArena(4 * (bytes + kArenaAlign));
  for (float** p : {&master_, &grad_, &m_, &v_}) {
    *p = static_cast<float*>(arena_.alloc(bytes));
    BRISK_CUDA_CHECK(cudaMemsetAsync(*p, 0, bytes, stream_));
  }
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));

  // Which tensors train, and with which decay: the CPU trainer's list.
  std::map<std::string, bool> decay;
  for (const TrainGrad& p : full_finetune_params(c, working, nullptr, train_embed, train_head))
    decay[p.name] = p.decay;
  auto specs = weight_specs(c, working);
  BRISK_ASSERT(specs.size() == layout.offsets.size());
  grads_.layers.resize(size_t(c.num_layers));
  auto grad_specs = weight_specs(c, grads_);
  for (size_t i = 0; i < specs.size(); ++i) {
    const Tensor& w = *specs[i].slot;
    BRISK_ASSERT(w.defined() && w.device == Device::CUDA && w.shape == specs[i].shape &&
                 (w.dtype == DType::BF16 || w.dtype == DType::F32));
    auto it = decay.find(specs[i].name);
    const bool trainable = it != decay.end();
    entries_.push_back({specs[i].name, layout.offsets[i], w, trainable, trainable && it->second});
    if (trainable) {
      trainable_.push_back(i);
      *grad_specs[i].slot = Tensor(grad_ + layout.offsets[i], DType::F32, specs[i].shape, Device::CUDA);
    }
  }
  BRISK_ASSERT(trainable_.size() == decay.size());
  // Tied embeddings: the LM head's gradient is the embedding's (the CPU trainer's rule: only
  // when both the embeddings and the head train).
  if (c.tie_word_embeddings) grads_.lm_head = train_embed && train_head ? grads_.embed : Tensor();
}

void CudaFullParams::refresh(const Entry& e) {
  const float* src = master_ + e.off;
  const int64_t n = e.working.numel();
  if (e.working.dtype == DType::BF16) {
    launch_f32_to_bf16(src, static_cast<__nv_bfloat16*>(e.working.data), n, stream_);
  } else {
    BRISK_CUDA_CHECK(
        cudaMemcpyAsync(e.working.data, src, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }
}

// The k-th trainable entry, checked against the optimizer's state name for it.
const CudaFullParams::Entry& CudaFullParams::trainable_entry(size_t k, const std::string& state_name) const {
  BRISK_ASSERT(k < trainable_.size());
  const Entry& e = entries_[trainable_[k]];
  BRISK_ASSERT(state_name == e.name + ".exp_avg", "optimizer state ", state_name, " does not belong to ", e.name);
  return e;
}

void CudaFullParams::upload(ModelWeights& host, train::AdamW* opt) {
  auto specs = weight_specs(cfg_, host);
  BRISK_ASSERT(specs.size() == entries_.size());
  // The copies below are synchronous on the legacy stream, which does not wait for ours.
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < specs.size(); ++i) {
    const Tensor& t = *specs[i].slot;
    BRISK_CHECK(t.dtype == DType::F32 && t.is_contiguous() && t.shape == specs[i].shape,
                "full fine-tuning on the GPU needs f32 host weights (", specs[i].name, " is ", t.desc(), ")");
    copy_to_device(master_ + entries_[i].off, t.data, size_t(t.numel()) * sizeof(float));
  }
  if (opt) {
    auto state = opt->state_tensors();
    BRISK_ASSERT(state.size() == 2 * trainable_.size());
    for (size_t k = 0; k < trainable_.size(); ++k) {
      const Entry& e = trainable_entry(k, state[2 * k].first);
      const size_t bytes = size_t(e.working.numel()) * sizeof(float);
      copy_to_device(m_ + e.off, state[2 * k].second.data, bytes);
      copy_to_device(v_ + e.off, state[2 * k + 1].second.data, bytes);
    }
  } else {
    BRISK_CUDA_CHECK(cudaMemsetAsync(m_, 0, floats_ * sizeof(float), stream_));
    BRISK_CUDA_CHECK(cudaMemsetAsync(v_, 0, floats_ * sizeof(float), stream_));
  }
  for (const Entry& e : entries_) refresh(e);
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaFullParams::download(ModelWeights& host, train::AdamW* opt) const {
  auto specs = weight_specs(cfg_, host);
  BRISK_ASSERT(specs.size() == entries_.size());
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<std::pair<std::string, Tensor>> state;
  if (opt) state = opt->state_tensors();
  BRISK_ASSERT(!opt || state.size() == 2 * trainable_.size());
  for (size_t k = 0; k < trainable_.size(); ++k) {
    const size_t i = trainable_[k];
    const Entry& e = entries_[i];
    const Tensor& t = *specs[i].slot;
    BRISK_ASSERT(t.dtype == DType::F32 && t.is_contiguous() && t.shape == e.working.shape);
    const size_t bytes = size_t(t.numel()) * sizeof(float);
    copy_to_host(t.data, master_ + e.off, bytes);
    if (opt) {
      trainable_entry(k, state[2 * k].first);
      copy_to_host(state[2 * k].second.data, m_ + e.off, bytes);
      copy_to_host(state[2 * k + 1].second.data, v_ + e.off, bytes);
    }
  }
}

void CudaFullParams::masters_from_working() {
  for (const Entry& e : entries_) {
    float* dst = master_ + e.off;
    const int64_t n = e.working.numel();
    if (e.working.dtype == DType::BF16) {
      launch_bf16_to_f32(static_cast<const __nv_bfloat16*>(e.working.data), dst, n, stream_);
    } else {
      BRISK_CUDA_CHECK(
          cudaMemcpyAsync(dst, e.working.data, size_t(n) * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
    }
  }
  BRISK_CUDA_CHECK(cudaMemsetAsync(m_, 0, floats_ * sizeof(float), stream_));
  BRISK_CUDA_CHECK(cudaMemsetAsync(v_, 0, floats_ * sizeof(float), stream_));
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaFullParams::step(const AdamWHyper& h, int64_t step) {
  for (size_t i : trainable_) {
    const Entry& e = entries_[i];
    launch_adamw(master_ + e.off, grad_ + e.off, m_ + e.off, v_ + e.off, e.working.numel(), h, step, e.decay,
                 stream_);
    refresh(e);
  }
}

void CudaFullParams::zero_grad() {
  BRISK_CUDA_CHECK(cudaMemsetAsync(grad_, 0, floats_ * sizeof(float), stream_));
}

std::vector<float> CudaFullParams::gradient(const std::string& name) const {
  for (size_t i : trainable_)
    if (entries_[i].name == name) {
      std::vector<float> out(size_t(entries_[i].working.numel()));
      BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
      copy_to_host(out.data(), grad_ + entries_[i].off, out.size() * sizeof(float));
      return out;
    }
  throw Error(cat("no trainable tensor named ", name));
}

}  // namespace brisk::cuda
