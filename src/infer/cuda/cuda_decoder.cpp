// Placeholder until the CUDA decoder lands: reports "not available" so make_decoder() falls
// back to the CPU (auto) or says why (--device cuda).
#include "infer/cuda/cuda_decoder.h"

#include "core/error.h"

namespace brisk::infer {

bool cuda_decoder_available(std::string* why) {
  if (why) *why = "the CUDA decoder is not built yet";
  return false;
}

std::unique_ptr<Decoder> make_cuda_decoder(Model&) { BRISK_CHECK(false, "the CUDA decoder is not built yet"); }

}  // namespace brisk::infer
