#include "infer/decoder.h"

#include "core/error.h"

#ifdef BRISK_HAVE_CUDA
#include "infer/cuda/cuda_decoder.h"
#endif

namespace brisk::infer {

void CpuDecoder::reserve(int n_slots, int64_t capacity) {
  BRISK_CHECK(n_slots > 0 && capacity > 0, "decoder needs at least one slot and one position (got ", n_slots,
              " slots of ", capacity, ")");
  cache_ = KVCache(model_.config(), n_slots, capacity);
}

Tensor CpuDecoder::forward(const std::vector<SeqChunk>& batch) {
  BRISK_CHECK(cache_.n_slots() > 0, "decoder has no KV cache: call reserve() first");
  for (const SeqChunk& c : batch) {
    BRISK_CHECK(c.slot >= 0 && c.slot < cache_.n_slots(), "slot ", c.slot, " out of range (", cache_.n_slots(),
                " slots)");
    BRISK_CHECK(cache_.length(c.slot) + int64_t(c.tokens.size()) <= cache_.capacity(), "sequence in slot ", c.slot,
                " would reach ", cache_.length(c.slot) + int64_t(c.tokens.size()), " tokens, over the context of ",
                cache_.capacity());
  }
  return model_.forward(batch, cache_);
}

std::vector<int32_t> Decoder::forward_sample(const std::vector<SeqChunk>& batch, std::vector<Sampler*>& samplers,
                                            const std::vector<const std::vector<int32_t>*>& histories) {
  BRISK_CHECK(samplers.size() == batch.size() && histories.size() == batch.size(), "forward_sample: ", batch.size(),
              " chunks need as many samplers and histories (got ", samplers.size(), " and ", histories.size(), ")");
  Tensor logits = forward(batch);
  const int64_t vocab = config().vocab_size;
  std::vector<int32_t> ids;
  int64_t row = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    row += batch[i].all_logits ? int64_t(batch[i].tokens.size()) : 1;  // past this chunk's rows
    ids.push_back(samplers[i]->sample(logits.f32() + (row - 1) * vocab, vocab, *histories[i]));
  }
  return ids;
}

std::unique_ptr<Decoder> make_decoder(Model& model, const std::string& device) {
  BRISK_CHECK(device == "cpu" || device == "cuda" || device == "auto", "unknown device '", device,
              "' (expected cpu, cuda or auto)");
  if (device == "cpu") return std::make_unique<CpuDecoder>(model);
#ifdef BRISK_HAVE_CUDA
  std::string why;
  if (cuda_decoder_available(&why)) return make_cuda_decoder(model);
  BRISK_CHECK(device != "cuda", "--device cuda: ", why);
  return std::make_unique<CpuDecoder>(model);
#else
  BRISK_CHECK(device != "cuda", "--device cuda: this brisk was built without CUDA (CPU-only build)");
  return std::make_unique<CpuDecoder>(model);
#endif
}

}  // namespace brisk::infer
