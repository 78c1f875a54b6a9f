#include "cli/model_session.h"

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "core/log.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "model/gguf_model.h"
#include "text/gguf_vocab.h"

namespace brisk::cli {

void GenerateArgs::add_sampling_flags(CLI::App& app) {
  app.add_option("--max-tokens", max_tokens, "Most tokens to generate")->default_val(256);
  app.add_option("--temperature", temperature, "Sampling temperature (0 = greedy)");
  app.add_option("--top-k", top_k, "Keep the k most likely tokens (0 = off)");
  app.add_option("--top-p", top_p, "Nucleus sampling: keep the smallest set with this much probability");
  app.add_option("--min-p", min_p, "Drop tokens below min-p times the top probability");
  app.add_option("--repeat-penalty", repeat_penalty, "Repetition penalty (1 = off)");
  app.add_option("--seed", seed, "Random seed (same seed, same output)");
  app.add_option("--stop", stops, "Stop before this string (repeatable)");
  app.add_option("--adapter", adapter_dir, "LoRA adapter folder (PEFT format; brisk- or PEFT-trained)");
  app.add_option("--ctx", ctx, "Context size (default: prompt + max tokens)");
  app.add_option("--device", device, "cpu, cuda or auto (the GPU when one is usable)")->default_val("auto");
  app.add_option("--set", template_vars, "Chat-template variable KEY=JSON, e.g. enable_thinking=false (repeatable)");
}

ModelSession ModelSession::open(const std::string& dir, const std::string& adapter_dir) {
  BRISK_CHECK(dir_exists(dir) || is_gguf_path(dir), "model ", dir, " is neither a model folder nor a .gguf file");
  ModelSession s;
  s.dir = dir;
  if (is_gguf_path(dir)) return open_gguf(dir, adapter_dir);
  s.model = Model::load(dir);
  if (!adapter_dir.empty()) {
    s.adapter = std::make_unique<LoraAdapter>(load_peft_adapter(adapter_dir, s.model->config()));
    s.model->set_adapter(s.adapter.get());
  }
  s.gen = io::load_generation_config(dir);
  if (file_exists(path_join(dir, "tokenizer.json")))
    s.tokenizer = std::make_unique<text::Tokenizer>(text::Tokenizer::load(dir));
  if (s.tokenizer) {
    if (auto src = text::find_chat_template(dir, /*has_tools=*/false)) {
      s.chat_template = std::make_unique<text::ChatTemplate>(src->text, src->origin);
      s.bos_token = s.tokenizer->bos_token();
      s.eos_token = s.tokenizer->eos_token();
    }
  }
  return s;
}

// A GGUF file carries everything: weights, config, tokenizer, chat template, stop ids.
ModelSession ModelSession::open_gguf(const std::string& path, const std::string& adapter_dir) {
  BRISK_CHECK(adapter_dir.empty(), "--adapter with a .gguf model: merge the adapter at export time "
                                   "(brisk export gguf MODEL_DIR --adapter ADAPTER_DIR)");
  ModelSession s;
  s.dir = path;
  io::GGUFFile f = io::GGUFFile::open(path);
  ModelConfig cfg = config_from_gguf(f);
  ModelWeights w = weights_from_gguf(f, cfg);
  s.model = std::make_unique<Model>(std::move(cfg), std::move(w));
  s.gen = generation_config_from_gguf(f);
  s.tokenizer = std::make_unique<text::Tokenizer>(text::tokenizer_from_gguf(f));
  if (f.has("tokenizer.chat_template")) {
    s.chat_template = std::make_unique<text::ChatTemplate>(f.get_string("tokenizer.chat_template"), path);
    s.bos_token = s.tokenizer->bos_token();
    s.eos_token = s.tokenizer->eos_token();
  }
  return s;
}

std::unique_ptr<infer::Decoder> ModelSession::decoder(const std::string& device) const {
  // The adapter is already on the model (open); both decoders apply the model's adapter.
  return infer::make_decoder(*model, device);
}

std::vector<int32_t> ModelSession::prompt_ids(const GenerateArgs& a) const {
  if (!a.prompt_ids_json.empty()) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(a.prompt_ids_json);
    } catch (const nlohmann::json::exception&) {
      throw Error("--prompt-ids must be a JSON array of integers");
    }
    BRISK_CHECK(j.is_array(), "--prompt-ids must be a JSON array of integers");
    std::vector<int32_t> ids;
    for (auto& v : j) {
      BRISK_CHECK(v.is_number_integer(), "--prompt-ids must be a JSON array of integers");
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  }
  BRISK_CHECK(tokenizer, dir, " has no tokenizer.json: pass the prompt as --prompt-ids");
  if (a.raw || !chat_template) return tokenizer->encode(a.prompt, /*add_special_tokens=*/true);
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  messages.push_back({{"role", "user"}, {"content", a.prompt}});
  return chat_prompt_ids(messages, a.template_vars);
}

std::vector<int32_t> ModelSession::chat_prompt_ids(const nlohmann::ordered_json& messages,
                                                   const std::vector<std::string>& vars) const {
  BRISK_CHECK(tokenizer && chat_template, dir, " has no chat template (use --raw)");
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  for (const std::string& kv : vars) {
    size_t eq = kv.find('=');
    BRISK_CHECK(eq != std::string::npos && eq > 0, "--set takes KEY=JSON, got \"", kv, "\"");
    std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
    try {
      extra[key] = nlohmann::ordered_json::parse(val);
    } catch (const nlohmann::json::exception&) {
      extra[key] = val;  // not JSON: a plain string
    }
  }
  std::string prompt = chat_template->render(messages, nullptr, /*add_generation_prompt=*/true, bos_token, eos_token, extra);
  return tokenizer->encode(prompt, /*add_special_tokens=*/false);
}

infer::GenerateOptions ModelSession::generate_options(const GenerateArgs& a) const {
  infer::GenerateOptions o;
  infer::SamplingParams& p = o.sampling;
  // generation_config.json's sampling defaults apply only when it asks for sampling, as in
  // transformers' generate(); explicit flags always win.
  if (gen.do_sample) {
    if (gen.temperature >= 0) p.temperature = float(gen.temperature);
    if (gen.top_p >= 0) p.top_p = float(gen.top_p);
    if (gen.top_k >= 0) p.top_k = int(gen.top_k);
    if (gen.min_p >= 0) p.min_p = float(gen.min_p);
  } else {
    p.temperature = 0.0f;
  }
  if (gen.repetition_penalty > 0) p.repetition_penalty = float(gen.repetition_penalty);
  if (a.temperature >= 0) p.temperature = float(a.temperature);
  if (a.top_p >= 0) p.top_p = float(a.top_p);
  if (a.top_k >= 0) p.top_k = int(a.top_k);
  if (a.min_p >= 0) p.min_p = float(a.min_p);
  if (a.repeat_penalty >= 0) p.repetition_penalty = float(a.repeat_penalty);
  BRISK_CHECK(p.temperature >= 0, "--temperature must be >= 0");
  BRISK_CHECK(p.top_p > 0 && p.top_p <= 1, "--top-p must be in (0, 1]");
  BRISK_CHECK(p.min_p >= 0 && p.min_p <= 1, "--min-p must be in [0, 1]");
  BRISK_CHECK(p.repetition_penalty > 0, "--repeat-penalty must be > 0");
  BRISK_CHECK(a.max_tokens >= 0, "--max-tokens must be >= 0");
  p.seed = a.seed;
  o.max_tokens = a.max_tokens;
  o.context = a.ctx;
  o.stop_strings = a.stops;
  o.stop_ids = gen.eos_token_ids.empty() ? model->config().eos_token_ids : gen.eos_token_ids;
  return o;
}

}  // namespace brisk::cli
