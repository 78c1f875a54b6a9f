#include "server/inference_service.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "core/fs.h"
#include "core/log.h"
#include "infer/decoder.h"
#include "infer/generate.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "model/gguf_model.h"
#include "model/lora.h"
#include "model/model.h"
#include "text/chat_template.h"
#include "text/gguf_vocab.h"
#include "text/tokenizer.h"

namespace brisk::server {

namespace {
// Tokens one step may carry: decodes first (one each), then prompt chunks up to this total.
// Long prompts are split so that running decodes are never stalled behind a whole prefill.
constexpr int64_t kStepTokens = 512;
constexpr int64_t kDefaultContextCap = 4096;

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.find_last_of('/');
  std::string name = slash == std::string::npos ? p : p.substr(slash + 1);
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".gguf") == 0) name.resize(name.size() - 5);
  return name;
}

// The stop string that starts at `at` (the earliest one, longest on a tie).
std::string stop_at(const std::string& text, const std::vector<std::string>& stops, size_t at) {
  std::string best;
  for (const std::string& s : stops)
    if (!s.empty() && text.compare(at, s.size(), s) == 0 && s.size() > best.size()) best = s;
  return best;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Generation channel

bool Generation::next(GenerationEvent& ev, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !queue_.empty(); })) return false;
  ev = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

void Generation::push(GenerationEvent ev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(ev));
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------------
// A loaded model and its scheduler

struct Pending {
  std::shared_ptr<Generation> gen;
  GenerationRequest req;
  const LoraAdapter* adapter = nullptr;
  std::unique_ptr<infer::Sampler> sampler;
  std::unique_ptr<text::StreamDecoder> detok;  // built by the submitting thread: it copies the tokenizer
};

class LoadedModel {
 public:
  ModelInfo info;
  std::unique_ptr<Model> model;
  std::unique_ptr<text::Tokenizer> tokenizer;
  GenerationConfig gen_config;
  std::unique_ptr<text::ChatTemplate> chat_template, tool_template;
  std::string bos_token, eos_token;
  std::map<std::string, std::unique_ptr<LoraAdapter>> adapters;
  std::unique_ptr<infer::Decoder> decoder;

  ~LoadedModel() { stop(); }
  void start();
  void stop();  // cancels everything in flight and joins the scheduler (idempotent)
  void enqueue(Pending p);
  void cancel_all();

 private:
  struct Slot {
    Pending p;  // p.gen null: the slot is free
    size_t prefilled = 0;    // prompt tokens already in the cache
    int32_t next_token = -1; // sampled, to be appended by the next step
    int64_t generated = 0;
    std::vector<int32_t> history;  // prompt + generated (for penalties)
    std::string text;              // decoded so far (cut at a stop string)
    size_t emitted = 0;            // bytes of text sent
    bool active() const { return p.gen != nullptr; }
  };

  void run();
  void admit();
  void step();
  void accept_token(int slot, int32_t id);
  void finish(int slot, const std::string& reason, const std::string& stop_sequence = "", const std::string& error = "");

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  std::vector<std::shared_ptr<Generation>> running_;  // mirror of the slots' requests, for cancel_all
  bool stopping_ = false;
  std::thread thread_;
  std::vector<Slot> slots_;  // scheduler thread only
};

void LoadedModel::start() {
  slots_.resize(size_t(decoder->n_slots()));
  running_.resize(slots_.size());
  thread_ = std::thread([this] { run(); });
}

void LoadedModel::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LoadedModel::enqueue(Pending p) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    BRISK_CHECK(!stopping_, "model ", info.name, " is being unloaded");
    pending_.push_back(std::move(p));
  }
  cv_.notify_all();
}

void LoadedModel::cancel_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& p : pending_) p.gen->cancel();
  for (auto& g : running_)
    if (g) g->cancel();
}

void LoadedModel::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.active(); });
      };
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || busy(); });
      if (stopping_) {
        for (auto& p : pending_) {
          GenerationEvent ev;
          ev.done = true;
          ev.finish_reason = "cancelled";
          ev.error = "model " + info.name + " was unloaded";
          p.gen->push(std::move(ev));
        }
        pending_.clear();
        lock.unlock();
        for (size_t i = 0; i < slots_.size(); ++i)
          if (slots_[i].active()) finish(int(i), "cancelled", "", "model " + info.name + " was unloaded");
        return;
      }
    }
    admit();
    try {
      step();
    } catch (const std::exception& e) {
      // A failed forward (out of memory on a device, a bug) must not take the server down:
      // fail the requests in flight and keep serving new ones.
      log_error("model ", info.name, ": generation step failed: ", e.what());
      for (size_t i = 0; i < slots_.size(); ++i)
        if (slots_[i].active()) finish(int(i), "cancelled", "", std::string("generation failed: ") + e.what());
    }
  }
}

void LoadedModel::admit() {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < slots_.size() && !pending_.empty(); ++i) {
    if (slots_[i].active()) continue;
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    if (p.gen->cancelled()) {
      GenerationEvent ev;
      ev.done = true;
      ev.finish_reason = "cancelled";
      ev.prompt_tokens = int64_t(p.req.prompt.size());
      p.gen->push(std::move(ev));
      --i;  // the slot is still free
      continue;
    }
    decoder->clear(int(i));
    Slot& s = slots_[i];
    s = Slot{};
    s.history = p.req.prompt;
    s.p = std::move(p);
    running_[i] = s.p.gen;
  }
}

void LoadedModel::step() {
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].active() && slots_[i].p.gen->cancelled()) finish(int(i), "cancelled");

  // Plan the step: every decoding slot gets its one token, then prompts fill the rest.
  struct Work {
    int slot;
    SeqChunk chunk;
    const LoraAdapter* adapter;  // fixed at planning: a slot finished earlier in this step is reset
  };
  std::vector<Work> work;
  int64_t budget = kStepTokens;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.active() && s.next_token >= 0) {
      work.push_back({int(i), SeqChunk{int(i), {s.next_token}, false}, s.p.adapter});
      --budget;
    }
  }
  for (size_t i = 0; i < slots_.size() && budget > 0; ++i) {
    Slot& s = slots_[i];
    if (!s.active() || s.next_token >= 0) continue;
    const auto& prompt = s.p.req.prompt;
    int64_t n = std::min<int64_t>(budget, int64_t(prompt.size() - s.prefilled));
    std::vector<int32_t> toks(prompt.begin() + int64_t(s.prefilled), prompt.begin() + int64_t(s.prefilled) + n);
    work.push_back({int(i), SeqChunk{int(i), std::move(toks), false}, s.p.adapter});
    budget -= n;
  }
  if (work.empty()) return;

  // One forward per adapter in use (usually one): slots that share weights share a call. Groups
  // come from the plan, not from the slots: a slot that finishes in one group's call is reset
  // (no adapter), and must not be picked up by the base model's group after it.
  std::vector<const LoraAdapter*> groups;
  for (const Work& w : work)
    if (std::find(groups.begin(), groups.end(), w.adapter) == groups.end()) groups.push_back(w.adapter);
  const int64_t vocab = decoder->config().vocab_size;
  for (const LoraAdapter* adapter : groups) {
    std::vector<const Work*> members;
    std::vector<SeqChunk> batch;
    for (const Work& w : work)
      if (w.adapter == adapter && slots_[size_t(w.slot)].active()) {
        members.push_back(&w);
        batch.push_back(w.chunk);
      }
    if (batch.empty()) continue;
    decoder->set_adapter(adapter);
    Tensor logits = decoder->forward(batch);
    for (size_t j = 0; j < members.size(); ++j) {
      Slot& s = slots_[size_t(members[j]->slot)];
      if (s.next_token < 0) {
        s.prefilled += members[j]->chunk.tokens.size();
        if (s.prefilled < s.p.req.prompt.size()) continue;  // more prompt to go: logits unused
      }
      float* row = logits.f32() + int64_t(j) * vocab;
      int32_t id = s.p.sampler->sample(row, vocab, s.history);
      accept_token(members[j]->slot, id);
    }
  }
  decoder->set_adapter(nullptr);
}

void LoadedModel::accept_token(int slot, int32_t id) {
  Slot& s = slots_[size_t(slot)];
  const GenerationRequest& req = s.p.req;
  s.history.push_back(id);
  ++s.generated;
  s.next_token = id;
  if (std::find(req.stop_ids.begin(), req.stop_ids.end(), int64_t(id)) != req.stop_ids.end()) return finish(slot, "stop");
  s.text += s.p.detok->push(id);
  size_t hold = 0;
  size_t at = infer::find_stop(s.text, req.stop_strings, &hold);
  if (at != std::string::npos) {
    std::string stop = stop_at(s.text, req.stop_strings, at);
    s.text.resize(at);
    return finish(slot, "stop", stop);
  }
  size_t ready = s.text.size() - hold;
  if (ready > s.emitted) {
    GenerationEvent ev;
    ev.text = s.text.substr(s.emitted, ready - s.emitted);
    s.emitted = ready;
    s.p.gen->push(std::move(ev));
  }
  // The sampled token goes into the cache next step: there must be room for it.
  if (s.generated >= req.max_tokens || decoder->length(slot) + 1 > decoder->capacity()) return finish(slot, "length");
}

void LoadedModel::finish(int slot, const std::string& reason, const std::string& stop_sequence, const std::string& error) {
  Slot& s = slots_[size_t(slot)];
  GenerationEvent done;
  done.done = true;
  done.finish_reason = reason;
  done.stop_sequence = stop_sequence;
  done.error = error;
  if (reason == "length" || (reason == "stop" && stop_sequence.empty())) {
    // Stopped by length or a stop id: the decoder may still hold bytes of an incomplete
    // character; a stop string may appear only now.
    s.text += s.p.detok->flush();
    size_t at = infer::find_stop(s.text, s.p.req.stop_strings, nullptr);
    if (at != std::string::npos) {
      done.stop_sequence = stop_at(s.text, s.p.req.stop_strings, at);
      done.finish_reason = "stop";
      s.text.resize(at);
    }
  }
  if (reason != "cancelled" && s.text.size() > s.emitted) {
    GenerationEvent ev;
    ev.text = s.text.substr(s.emitted);
    s.p.gen->push(std::move(ev));
  }
  done.prompt_tokens = int64_t(s.p.req.prompt.size());
  done.completion_tokens = s.generated;
  log_info("generation ", done.finish_reason, ": ", done.prompt_tokens, " prompt + ", done.completion_tokens,
           " generated tokens (", info.name, s.p.adapter ? ", adapter" : "", ")");
  s.p.gen->push(std::move(done));
  decoder->clear(slot);
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_[size_t(slot)].reset();
  }
  s = Slot{};
}

// ---------------------------------------------------------------------------------------------
// ModelRef

const std::string& ModelRef::model_name() const { return model->info.name; }
const text::Tokenizer& ModelRef::tokenizer() const { return *model->tokenizer; }
const text::ChatTemplate* ModelRef::chat_template(bool has_tools) const {
  if (has_tools && model->tool_template) return model->tool_template.get();
  return model->chat_template.get();
}
const std::string& ModelRef::bos_token() const { return model->bos_token; }
const std::string& ModelRef::eos_token() const { return model->eos_token; }
std::vector<int64_t> ModelRef::stop_ids() const {
  return model->gen_config.eos_token_ids.empty() ? model->model->config().eos_token_ids : model->gen_config.eos_token_ids;
}
int64_t ModelRef::context() const { return model->info.context; }
int64_t ModelRef::created() const { return model->info.created; }
const GenerationConfig& ModelRef::generation_config() const { return model->gen_config; }

// ---------------------------------------------------------------------------------------------
// InferenceService

InferenceService::InferenceService() = default;

InferenceService::~InferenceService() {
  std::map<std::string, std::shared_ptr<LoadedModel>> models;
  {
    std::lock_guard<std::mutex> lock(mu_);
    models.swap(models_);
  }
  for (auto& [name, m] : models) m->stop();
}

std::string InferenceService::load(const ModelLoadOptions& opt) {
  BRISK_CHECK(opt.parallel >= 1 && opt.parallel <= 256, "--parallel must be in [1, 256], got ", opt.parallel);
  BRISK_CHECK(opt.context >= 0, "--ctx must be >= 0, got ", opt.context);
  const bool gguf = is_gguf_path(opt.path);
  BRISK_CHECK(gguf || dir_exists(opt.path), "model ", opt.path, " is neither a model folder nor a .gguf file");
  std::string name = opt.name.empty() ? base_name(opt.path) : opt.name;
  BRISK_CHECK(!name.empty() && name.find(':') == std::string::npos, "model name '", name,
              "' must be non-empty and without ':' (':' separates the adapter in model ids)");
  {
    std::lock_guard<std::mutex> lock(mu_);
    BRISK_CHECK(!models_.count(name), "a model named '", name, "' is already loaded");
  }

  auto m = std::make_shared<LoadedModel>();
  if (gguf) {
    BRISK_CHECK(opt.adapters.empty(), "adapters with a .gguf model are not supported: serve the HF folder, or merge "
                                      "the adapter at export time");
    io::GGUFFile f = io::GGUFFile::open(opt.path);
    ModelConfig cfg = config_from_gguf(f);
    ModelWeights w = weights_from_gguf(f, cfg);
    m->model = std::make_unique<Model>(std::move(cfg), std::move(w));
    m->gen_config = generation_config_from_gguf(f);
    m->tokenizer = std::make_unique<text::Tokenizer>(text::tokenizer_from_gguf(f));
    if (f.has("tokenizer.chat_template"))
      m->chat_template = std::make_unique<text::ChatTemplate>(f.get_string("tokenizer.chat_template"), opt.path);
  } else {
    BRISK_CHECK(file_exists(path_join(opt.path, "tokenizer.json")), "model ", opt.path,
                " has no tokenizer.json: the server needs a tokenizer");
    m->model = Model::load(opt.path);
    m->gen_config = io::load_generation_config(opt.path);
    m->tokenizer = std::make_unique<text::Tokenizer>(text::Tokenizer::load(opt.path));
    auto plain = text::find_chat_template(opt.path, /*has_tools=*/false);
    if (plain) m->chat_template = std::make_unique<text::ChatTemplate>(plain->text, plain->origin);
    // Some models ship a separate "tool_use" template for requests with tools.
    auto tools = text::find_chat_template(opt.path, /*has_tools=*/true);
    if (plain && tools && tools->text != plain->text)
      m->tool_template = std::make_unique<text::ChatTemplate>(tools->text, tools->origin);
  }
  m->bos_token = m->tokenizer->bos_token();
  m->eos_token = m->tokenizer->eos_token();
  for (const auto& [aname, dir] : opt.adapters) {
    BRISK_CHECK(!aname.empty() && aname.find(':') == std::string::npos, "adapter name '", aname,
                "' must be non-empty and without ':'");
    BRISK_CHECK(!m->adapters.count(aname), "adapter name '", aname, "' given twice");
    m->adapters[aname] = std::make_unique<LoraAdapter>(load_peft_adapter(dir, m->model->config()));
    m->info.adapters.push_back(aname);
  }
  const ModelConfig& cfg = m->model->config();
  int64_t ctx = opt.context > 0 ? opt.context : std::min<int64_t>(cfg.max_position_embeddings, kDefaultContextCap);
  m->decoder = infer::make_decoder(*m->model, opt.device);
  m->decoder->reserve(opt.parallel, ctx);
  m->info.name = name;
  m->info.path = opt.path;
  m->info.device = m->decoder->device_name();
  m->info.context = ctx;
  m->info.vocab_size = cfg.vocab_size;
  m->info.parallel = opt.parallel;
  m->info.created = int64_t(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count());
  m->start();
  std::lock_guard<std::mutex> lock(mu_);
  BRISK_CHECK(!models_.count(name), "a model named '", name, "' is already loaded");
  models_[name] = m;
  return name;
}

void InferenceService::unload(const std::string& name) {
  std::shared_ptr<LoadedModel> m;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) throw ModelNotFound("model '" + name + "' is not loaded");
    m = it->second;
    models_.erase(it);
  }
  // Handlers may still hold the model (a shared_ptr): its memory goes when the last one ends.
  m->stop();
}

std::vector<ModelInfo> InferenceService::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelInfo> out;
  for (const auto& [name, m] : models_) out.push_back(m->info);
  return out;
}

std::vector<std::string> InferenceService::model_ids() const {
  std::vector<std::string> ids;
  for (const ModelInfo& m : list()) {
    ids.push_back(m.name);
    for (const std::string& a : m.adapters) ids.push_back(m.name + ":" + a);
  }
  return ids;
}

ModelRef InferenceService::resolve(const std::string& model_id) const {
  size_t colon = model_id.find(':');
  std::string name = model_id.substr(0, colon);
  std::string adapter = colon == std::string::npos ? "" : model_id.substr(colon + 1);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) throw ModelNotFound("the model '" + model_id + "' does not exist (see GET /v1/models)");
  if (colon != std::string::npos && !it->second->adapters.count(adapter))
    throw ModelNotFound("model '" + name + "' has no adapter '" + adapter + "' (see GET /v1/models)");
  return ModelRef{it->second, adapter};
}

std::shared_ptr<Generation> InferenceService::submit(const ModelRef& ref, GenerationRequest req) {
  LoadedModel& m = *ref.model;
  const int64_t n_prompt = int64_t(req.prompt.size());
  const int64_t ctx = m.info.context;
  BRISK_CHECK(n_prompt > 0, "the prompt is empty");
  for (int32_t id : req.prompt)
    BRISK_CHECK(id >= 0 && id < m.info.vocab_size, "prompt token id ", id, " out of range (vocab ", m.info.vocab_size, ")");
  BRISK_CHECK(req.max_tokens >= 0, "max_tokens must be >= 0, got ", req.max_tokens);
  if (req.max_tokens == 0) {
    if (n_prompt >= ctx)
      throw ContextLengthExceeded(cat("this model's maximum context length is ", ctx, " tokens, but the prompt has ",
                                      n_prompt, " tokens"));
    req.max_tokens = ctx - n_prompt;
  }
  if (n_prompt + req.max_tokens > ctx)
    throw ContextLengthExceeded(cat("this model's maximum context length is ", ctx, " tokens, but the request needs ",
                                    n_prompt + req.max_tokens, " (", n_prompt, " in the prompt, ", req.max_tokens,
                                    " for the completion): shorten the prompt or lower max_tokens"));
  Pending p;
  p.sampler = std::make_unique<infer::Sampler>(req.sampling);  // validates the parameters
  p.detok = std::make_unique<text::StreamDecoder>(*m.tokenizer, /*skip_special_tokens=*/true);
  p.adapter = ref.adapter.empty() ? nullptr : m.adapters.at(ref.adapter).get();
  p.gen = std::make_shared<Generation>();
  p.req = std::move(req);
  auto gen = p.gen;
  m.enqueue(std::move(p));
  return gen;
}

void InferenceService::cancel_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, m] : models_) m->cancel_all();
}

}  // namespace brisk::server
