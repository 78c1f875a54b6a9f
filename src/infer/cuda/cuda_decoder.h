// The CUDA decoder (infer/decoder.h): weights in bf16 on the GPU, KV cache on the GPU.
#pragma once
#include <memory>
#include <string>

#include "infer/decoder.h"

namespace brisk::infer {

// True when a GPU usable for bf16 inference is present (compute capability >= 8.0); otherwise
// false with the reason in *why ("no CUDA device", "GPU 0 ... has compute capability 7.5 ...").
bool cuda_decoder_available(std::string* why);
std::unique_ptr<Decoder> make_cuda_decoder(Model& model);

}  // namespace brisk::infer
