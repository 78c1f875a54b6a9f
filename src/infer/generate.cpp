#include "infer/generate.h"

#include <algorithm>
#include <chrono>

#include "text/tokenizer.h"

namespace brisk::infer {

size_t find_stop(const std::string& text, const std::vector<std::string>& stops, size_t* hold_back) {
  size_t first = std::string::npos;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    size_t p = text.find(s);
    if (p < first) first = p;
  }
  size_t hold = 0;
  if (first == std::string::npos)
    for (const std::string& s : stops)
      for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), text.size()); k > hold; --k)
        if (text.compare(text.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
  if (hold_back) *hold_back = hold;
  return first;
}

GenerateResult generate(Model& model, const text::Tokenizer* tok, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opt, const std::function<void(const std::string&)>& on_text) {
  CpuDecoder dec(model);
  return generate(dec, tok, prompt, opt, on_text);
}

GenerateResult generate(Decoder& model, const text::Tokenizer* tok, const std::vector<int32_t>& prompt,
                        const GenerateOptions& opt, const std::function<void(const std::string&)>& on_text) {
  using clock = std::chrono::steady_clock;
  BRISK_CHECK(!prompt.empty(), "empty prompt: nothing to condition on");
  const int64_t vocab = model.config().vocab_size;
  for (int32_t id : prompt) BRISK_CHECK(id >= 0 && id < vocab, "prompt token id ", id, " out of range (vocab ", vocab, ")");
  int64_t ctx = opt.context > 0 ? opt.context : int64_t(prompt.size()) + std::max<int64_t>(opt.max_tokens, 1);
  BRISK_CHECK(int64_t(prompt.size()) < ctx, "prompt of ", prompt.size(), " tokens does not fit the context of ", ctx);
  model.reserve(1, ctx);
  Sampler sampler(opt.sampling);
  GenerateResult res;
  res.prompt_tokens = int64_t(prompt.size());
  std::vector<int32_t> history = prompt;

  std::unique_ptr<text::StreamDecoder> dec;
  if (tok) dec = std::make_unique<text::StreamDecoder>(*tok, /*skip_special_tokens=*/true);
  size_t emitted = 0;   // bytes of res.text already passed to on_text

  // Sampling goes through the decoder, so a GPU decoder copies back one id per step, not logits.
  std::vector<Sampler*> samplers{&sampler};
  std::vector<const std::vector<int32_t>*> histories{&history};
  auto t0 = clock::now();
  int32_t id = model.forward_sample({SeqChunk{0, prompt, false}}, samplers, histories)[0];
  res.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  auto t1 = clock::now();
  res.finish_reason = "length";
  bool cut = false;  // text was cut at a stop string: nothing more to decode
  for (int64_t step = 0; step < opt.max_tokens; ++step) {
    res.ids.push_back(id);
    history.push_back(id);
    bool is_stop_id = std::find(opt.stop_ids.begin(), opt.stop_ids.end(), int64_t(id)) != opt.stop_ids.end();
    if (is_stop_id) {
      res.finish_reason = "stop";
      break;
    }
    if (dec) {
      res.text += dec->push(id);
      size_t hold = 0;
      size_t at = find_stop(res.text, opt.stop_strings, &hold);
      if (at != std::string::npos) {
        res.text.resize(at);
        res.finish_reason = "stop";
        cut = true;
        break;
      }
      size_t ready = res.text.size() - hold;
      if (on_text && ready > emitted) {
        on_text(res.text.substr(emitted, ready - emitted));
        emitted = ready;
      }
    }
    if (step + 1 == opt.max_tokens) break;
    if (model.length(0) >= ctx) break;
    id = model.forward_sample({SeqChunk{0, {id}, false}}, samplers, histories)[0];
  }
  if (dec && !cut) {
    res.text += dec->flush();
    size_t at = find_stop(res.text, opt.stop_strings, nullptr);
    if (at != std::string::npos) {
      res.text.resize(at);
      res.finish_reason = "stop";
    }
  }
  if (on_text && res.text.size() > emitted) on_text(res.text.substr(emitted));
  res.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return res;
}

}  // namespace brisk::infer
