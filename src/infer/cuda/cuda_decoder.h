// The CUDA decoder (infer/decoder.h): weights in bf16 on the GPU, a bf16 KV cache on the GPU,
// an f32 residual stream, logits (or sampled ids) copied back to the host. See docs/CUDA.md,
// "Inference".
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "infer/decoder.h"

namespace brisk::infer {

// True when a GPU usable for bf16 inference is present (compute capability >= 8.0); otherwise
// false with the reason in *why ("no CUDA device", "GPU 0 ... has compute capability 7.5 ...").
bool cuda_decoder_available(std::string* why);
std::unique_ptr<Decoder> make_cuda_decoder(Model& model);

// What `brisk bench decode` reports about a CUDA decoder; false when `d` is not one.
struct CudaDecoderStats {
  size_t weight_bytes = 0;           // device bytes of the weights
  size_t weight_bytes_per_token = 0; // bytes a batch-1 decode step reads (matrices, norms, one embedding row)
  size_t kv_cache_bytes = 0, activation_bytes = 0;
  size_t device_used_bytes = 0;      // cudaMemGetInfo total - free now (this process and others)
  bool graph_active = false;         // the batch-1 decode step replays a CUDA graph
};
bool cuda_decoder_stats(const Decoder& d, CudaDecoderStats* out);

// Device-to-device copy bandwidth in bytes/s (bytes read + written per second), measured with
// cudaMemcpyAsync of `bytes` (best of a few runs).
double measure_copy_bandwidth(size_t bytes);

}  // namespace brisk::infer
