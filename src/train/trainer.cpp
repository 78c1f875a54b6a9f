#include "train/trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "core/fs.h"
#include "core/log.h"
#include "core/rng.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/train_model.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/dist/communicator.h"
#include "train/dist/data_parallel.h"
#include "train/optimizer.h"
#include "train/train_engine.h"

namespace brisk::train {
namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// JSON-line events for a parent process (the studio) and metrics.jsonl for the run folder.
class EventSink {
 public:
  EventSink(const TrainerOptions& o) {
    if (!o.events_path.empty()) {
      fd_ = ::open(o.events_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      BRISK_CHECK(fd_ >= 0, "cannot open events file ", o.events_path);
      own_ = true;
    } else {
      fd_ = o.events_fd;
    }
  }
  ~EventSink() {
    if (own_) ::close(fd_);
  }
  void emit(const nlohmann::ordered_json& j) {
    if (fd_ < 0) return;
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    for (size_t done = 0; done < line.size();) {
      ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
      if (w <= 0) return;  // the reader went away: training goes on
      done += size_t(w);
    }
  }

 private:
  int fd_ = -1;
  bool own_ = false;
};

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  int64_t t = int64_t(s + 0.5);
  char b[32];
  if (t >= 3600) std::snprintf(b, sizeof b, "%lldh%02lldm", (long long)(t / 3600), (long long)(t / 60 % 60));
  else if (t >= 60) std::snprintf(b, sizeof b, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  else std::snprintf(b, sizeof b, "%llds", (long long)t);
  return b;
}

TokenBatch concat_rows(const std::vector<PackedRow>& rows, const std::vector<size_t>& order, size_t begin, size_t end) {
  TokenBatch b;
  b.cu_seqlens.push_back(0);
  for (size_t i = begin; i < end; ++i) {
    const PackedRow& r = rows[order[i]];
    int32_t base = int32_t(b.ids.size());
    b.ids.insert(b.ids.end(), r.ids.begin(), r.ids.end());
    b.labels.insert(b.labels.end(), r.labels.begin(), r.labels.end());
    b.positions.insert(b.positions.end(), r.positions.begin(), r.positions.end());
    for (size_t s = 1; s < r.cu_seqlens.size(); ++s) b.cu_seqlens.push_back(base + r.cu_seqlens[s]);
  }
  return b;
}

// Rows of epoch e in a seeded order (the same on every run and after resume).
std::vector<size_t> epoch_order(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> o(n);
  for (size_t i = 0; i < n; ++i) o[i] = i;
  Rng rng(seed * 1000003ull + uint64_t(epoch));
  for (size_t i = n; i > 1; --i) std::swap(o[i - 1], o[rng.below(i)]);
  return o;
}

void check_writable(const std::string& dir) {
  try {
    make_dirs(dir);
    std::string probe = path_join(dir, cat(".brisk-write-test-", ::getpid()));
    write_file_atomic(probe, "ok");
    std::remove(probe.c_str());
  } catch (const Error& e) {
    throw Error(cat("output_dir ", dir, " is not writable: ", e.what()));
  }
}

// Metrics lines past `step` are dropped on resume, so metrics.jsonl reads like one run.
void truncate_metrics(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::string in = read_file(path), out;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    std::string line = in.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? in.size() : nl + 1;
    try {
      auto j = nlohmann::json::parse(line);
      if (j.value("step", int64_t(0)) <= step) out += line + "\n";
    } catch (...) {
    }
  }
  write_file_atomic(path, out);
}

}  // namespace

std::string latest_checkpoint(const std::string& output_dir) {
  std::string best;
  int64_t best_step = -1;
  std::string root = checkpoints_root(output_dir);
  if (!dir_exists(root)) return "";
  for (auto& e : std::filesystem::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) != 0) continue;
    std::string num = n.substr(11);
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!file_exists(path_join(e.path().string(), "trainer_state.json"))) continue;
    int64_t s = std::stoll(num);
    if (s > best_step) best_step = s, best = e.path().string();
  }
  return best;
}

TrainOutcome run_training(const TrainConfig& cfg, const TrainerOptions& opt) {
  using clock = std::chrono::steady_clock;
  validate(cfg);
  LocalCommunicator one_process;
  Communicator& comm = opt.comm ? *opt.comm : one_process;
  const int world = comm.size(), rank = comm.rank();
  const bool lead = rank == 0;  // rank 0 alone writes files and events
  if (lead) check_writable(cfg.output_dir);
  EventSink events(lead ? opt : TrainerOptions{});
  const bool quiet = opt.quiet || !lead;

  // Model, tokenizer, template, data.
  auto model = Model::load(cfg.base_model);
  const ModelConfig& mc = model->config();
  text::Tokenizer tok = text::Tokenizer::load(cfg.base_model);
  std::unique_ptr<text::ChatTemplate> tmpl;
  if (auto src = text::find_chat_template(cfg.base_model, false)) tmpl = std::make_unique<text::ChatTemplate>(src->text, src->origin);
  LoadedDataset data = load_dataset(cfg, tok, tmpl.get());
  log_info("dataset: ", data.rows_read, " rows, format ", data.detected_format, ", ", data.train.size(), " train / ",
           data.eval.size(), " eval examples");
  for (size_t i = 0; i < data.problems.size() && i < 10; ++i)
    log_warn("dataset row ", data.problems[i].source_row, ": ", data.problems[i].message);
  if (data.problems.size() > 10) log_warn("... and ", data.problems.size() - 10, " more row problems");
  std::vector<PackedRow> rows = cfg.packing ? pack_examples(data.train, cfg.max_seq_length) : rows_from_examples(data.train);
  std::vector<PackedRow> eval_rows = rows_from_examples(data.eval);
  BRISK_CHECK(!rows.empty(), cfg.dataset.path, ": no training examples");

  // Trainable parameters.
  std::unique_ptr<LoraAdapter> lora;
  if (cfg.method == "lora") {
    LoraSpec spec;
    spec.r = cfg.lora.r;
    spec.alpha = cfg.lora.alpha;
    spec.dropout = cfg.lora.dropout;
    spec.rslora = cfg.lora.rslora;
    spec.targets = parse_target_modules(cfg.lora.target_modules);
    lora = std::make_unique<LoraAdapter>(init_lora(mc, spec, cfg.seed));
  }
  // GPU memory is planned for the largest micro-batch this run can form.
  int64_t longest = 1;
  for (const auto* rs : {&rows, &eval_rows})
    for (const PackedRow& r : *rs) longest = std::max<int64_t>(longest, int64_t(r.ids.size()));
  std::unique_ptr<TrainEngine> engine = make_train_engine(cfg, *model, lora.get(), longest * cfg.batch_size);
  AdamW& adam = engine->optimizer();
  std::vector<Param>& params = adam.params();
  int64_t n_trainable = 0;
  for (auto& p : params) n_trainable += p.value.numel();

  // Schedule.
  const int64_t per_step = cfg.batch_size * cfg.grad_accum * world;  // rows over all ranks
  const int64_t steps_per_epoch = (int64_t(rows.size()) + per_step - 1) / per_step;
  const int64_t total = cfg.max_steps > 0 ? cfg.max_steps
                                          : std::max<int64_t>(1, int64_t(std::ceil(cfg.num_epochs * double(steps_per_epoch))));
  const int64_t warmup = warmup_steps_for(cfg.warmup_steps, cfg.warmup_ratio, total);

  int64_t start_step = 0;
  nlohmann::ordered_json cfg_json = to_json(cfg);
  std::string metrics_path = path_join(cfg.output_dir, "metrics.jsonl");
  if (opt.resume) {
    std::string ck = opt.resume_from.empty() ? latest_checkpoint(cfg.output_dir) : opt.resume_from;
    BRISK_CHECK(!ck.empty(), "--resume: no checkpoint in ", checkpoints_root(cfg.output_dir));
    CheckpointState st = load_checkpoint(ck, *model, lora.get(), engine->params(), adam);
    engine->sync_from_host();
    start_step = st.step;
    BRISK_CHECK(st.rows_per_epoch == 0 || st.rows_per_epoch == int64_t(rows.size()), "--resume: the checkpoint saw ",
                st.rows_per_epoch, " training rows per epoch, this run has ", rows.size(),
                " (dataset, max_seq_length or packing changed?)");
    BRISK_CHECK(st.seed == 0 || st.seed == cfg.seed, "--resume: the checkpoint was trained with seed ", st.seed,
                ", this config has ", cfg.seed);
    BRISK_CHECK(st.global_batch_rows == 0 || st.global_batch_rows == per_step, "--resume: the checkpoint's steps were ",
                st.global_batch_rows, " rows (batch_size x grad_accum x ", st.world_size, " ranks), this run's are ",
                per_step, " (batch_size ", cfg.batch_size, " x grad_accum ", cfg.grad_accum, " x ", world,
                " ranks): keep the global batch, e.g. with --set grad_accum=...");
    if (lead) truncate_metrics(metrics_path, start_step);
    log_info("resumed from ", ck, " at step ", start_step);
  } else if (lead) {
    std::error_code ec;
    std::filesystem::remove(metrics_path, ec);
  }
  BRISK_CHECK(opt.zero_stage == 0 || opt.zero_stage == 1, "--zero ", opt.zero_stage, ": stages 0 and 1 exist");
  if (opt.zero_stage == 1) {
    const size_t unsharded = engine->optimizer_state_bytes();
    engine->enable_zero1(comm);
    if (lead)
      log_info("ZeRO-1: optimizer state ", engine->optimizer_state_bytes() / 1024, " KiB on rank 0 (", unsharded / 1024,
               " KiB unsharded, ", world, " ranks)");
  }
  if (lead) write_file_atomic(path_join(cfg.output_dir, "train_config.json"), cfg_json.dump(2) + "\n");
  if (world > 1 && lead)
    log_info("data parallel: ", world, " ranks (", comm.backend(), "), ", cfg.batch_size * cfg.grad_accum,
             " rows per rank per step");
  if (lead) log_info("training ", mc.model_type, " (", cfg.method, ", ", n_trainable, " trainable parameters) on ", rows.size(),
           " rows: ", total, " steps of ", per_step, " rows, warmup ", warmup, ", lr ", cfg.learning_rate);
  events.emit({{"event", "start"}, {"total_steps", total}, {"start_step", start_step}, {"train_rows", rows.size()},
               {"eval_rows", eval_rows.size()}, {"trainable_parameters", n_trainable},
               {"format", data.detected_format}, {"output_dir", cfg.output_dir}});

  g_stop_signal.store(0);
  auto old_int = std::signal(SIGINT, on_stop_signal);
  auto old_term = std::signal(SIGTERM, on_stop_signal);
  struct Restore {
    decltype(old_int) i, t;
    ~Restore() {
      std::signal(SIGINT, i);
      std::signal(SIGTERM, t);
    }
  } restore{old_int, old_term};

  auto eval_loss = [&]() -> double {
    double sum = 0;
    int64_t n = 0;
    for (size_t i = size_t(rank); i < eval_rows.size(); i += size_t(world)) {  // this rank's share
      std::vector<size_t> one{i};
      TokenBatch b = concat_rows(eval_rows, one, 0, 1);
      int64_t c = b.label_count();
      if (c == 0) continue;
      sum += engine->loss_only(b);
      n += c;
    }
    double totals[2] = {sum, double(n)};
    comm.all_reduce_sum_f64(totals, 2);
    return totals[1] > 0 ? totals[0] / totals[1] : 0.0;
  };
  CheckpointState st;
  st.total_steps = total;
  st.config = cfg_json;
  auto checkpoint = [&](int64_t step, double loss) {
    st.step = step;
    st.last_loss = loss;
    st.epoch = step / steps_per_epoch;
    st.rows_into_epoch = std::min<int64_t>(int64_t(rows.size()), (step % steps_per_epoch) * per_step);
    st.rows_per_epoch = int64_t(rows.size());
    st.seed = cfg.seed;
    st.global_batch_rows = per_step;
    st.world_size = world;
    check_replicas_agree(comm, *engine, step);  // collective: every rank, before rank 0 saves
    engine->gather_optimizer_state(0);          // collective (ZeRO-1)
    if (!lead) return std::string();
    engine->sync_to_host();
    std::string path = save_checkpoint(cfg.output_dir, st, *model, lora.get(), engine->params(), adam, cfg.base_model,
                                       cfg.save_total_limit);
    engine->release_optimizer_state();
    events.emit({{"event", "checkpoint"}, {"step", step}, {"path", path}});
    return path;
  };

  const bool tty = ::isatty(STDERR_FILENO) && !quiet;
  auto t_start = clock::now();
  int64_t tokens_since_start = 0;
  double last_loss = 0;
  std::vector<size_t> order;
  int64_t order_epoch = -1;
  for (int64_t step = start_step; step < total; ++step) {
    auto t0 = clock::now();
    int64_t epoch = step / steps_per_epoch, first = (step % steps_per_epoch) * per_step;
    if (epoch != order_epoch) order = epoch_order(rows.size(), cfg.seed, epoch), order_epoch = epoch;
    size_t begin = size_t(first), end = std::min(rows.size(), size_t(first + per_step));
    // This rank's rows of the step (all of them for one process), in micro-batches of
    // batch_size rows. The loss is normalised by the target tokens of the whole global batch,
    // so the summed gradients equal one process's on the same rows.
    std::vector<size_t> mine;
    for (size_t p : shard_positions(begin, end, rank, world)) mine.push_back(order[p]);
    std::vector<TokenBatch> micro;
    double counts[2] = {0, 0};  // target tokens, tokens: this rank's, then the global batch's
    for (size_t b = 0; b < mine.size(); b += size_t(cfg.batch_size)) {
      micro.push_back(concat_rows(rows, mine, b, std::min(mine.size(), b + size_t(cfg.batch_size))));
      counts[0] += double(micro.back().label_count());
      counts[1] += double(micro.back().size());
    }
    comm.all_reduce_sum_f64(counts, 2);
    const int64_t n_targets = int64_t(counts[0]), n_tokens = int64_t(counts[1]);
    // A device failure mid-run (a CUDA error surfaces as brisk::Error at the next checked call)
    // ends the run with the step, the device and the last good checkpoint named; checkpoints are
    // written atomically, so the ones on disk stay valid.
    auto on_device = [&](auto&& fn) {
      try {
        return fn();
      } catch (const Error& e) {
        std::string last = latest_checkpoint(cfg.output_dir);
        events.emit({{"event", "error"}, {"step", step + 1}, {"message", e.what()}, {"checkpoint", last}});
        throw Error(cat("step ", step + 1, " on ", engine->device(), ": ", e.what(), "; last good checkpoint: ",
                        last.empty() ? "none" : last + " (continue with --resume)"));
      }
    };
    // Dropout masks are keyed by the micro-batch's global index (one process: m).
    double sums[2] = {0, double(g_stop_signal.load() != 0)};  // loss sum, ranks asked to stop
    if (n_targets > 0)
      for (size_t m = 0; m < micro.size(); ++m)
        sums[0] += on_device([&] {
          return engine->forward_backward(micro[m], 1.0f / float(n_targets),
                                          cfg.seed ^ (uint64_t(step) << 20) ^ uint64_t(m * size_t(world) + size_t(rank)));
        });
    comm.all_reduce_sum_f64(sums, 2);
    // Every rank stops after the same step (one process also sees a signal that came later).
    const bool stop_now = sums[1] > 0;
    on_device([&] {
      all_reduce_gradients(comm, *engine);
      return 0;
    });
    double loss = n_targets ? sums[0] / double(n_targets) : 0.0;
    double gnorm = on_device([&] { return engine->clip_grad_norm(cfg.max_grad_norm); });
    if (!std::isfinite(loss) || !std::isfinite(gnorm)) {
      std::string last = latest_checkpoint(cfg.output_dir);
      events.emit({{"event", "error"}, {"step", step + 1}, {"message", "non-finite loss"}, {"checkpoint", last}});
      throw Error(cat("loss is ", std::isfinite(loss) ? "finite but the gradient norm is not" : "NaN/Inf", " at step ",
                      step + 1, ": stopping (try a lower learning_rate); last good checkpoint: ",
                      last.empty() ? "none" : last));
    }
    double lr = lr_at(cfg.lr_scheduler, cfg.learning_rate, step, warmup, total);
    AdamWOptions ao{lr, cfg.adam_beta1, cfg.adam_beta2, cfg.adam_epsilon, cfg.weight_decay};
    on_device([&] {
      engine->optimizer_step(ao);
      return 0;
    });
    last_loss = loss;
    double dt = std::chrono::duration<double>(clock::now() - t0).count();
    tokens_since_start += n_tokens;
    const int64_t done = step + 1;
    double elapsed = std::chrono::duration<double>(clock::now() - t_start).count();
    double eta = elapsed / double(done - start_step) * double(total - done);
    double tps = double(n_tokens) / dt;
    nlohmann::ordered_json m = {{"step", done}, {"epoch", double(step + 1) / double(steps_per_epoch)}, {"loss", loss},
                                {"lr", lr}, {"grad_norm", gnorm}, {"tokens", n_tokens}, {"tokens_per_s", tps},
                                {"elapsed_s", elapsed}};
    bool log_now = lead && (cfg.logging_steps <= 1 || done % cfg.logging_steps == 0 || done == total);
    if (opt.replica_check_steps > 0 && done % opt.replica_check_steps == 0) check_replicas_agree(comm, *engine, done);
    if (log_now) {
      nlohmann::ordered_json ev = {{"event", "step"}};
      ev.update(m);
      events.emit(ev);
      std::string line = m.dump() + "\n";
      int fd = ::open(metrics_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ssize_t w = ::write(fd, line.data(), line.size());
        (void)w;
        ::close(fd);
      }
      if (!quiet) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "step %lld/%lld | loss %.4f | lr %.3g | grad %.3f | %.0f tok/s | ETA %s",
                      (long long)done, (long long)total, loss, lr, gnorm, tps, format_duration(eta).c_str());
        std::fprintf(stderr, tty ? "\r%s\033[K" : "%s\n", buf);
      }
    }
    bool eval_now = !eval_rows.empty() && ((cfg.eval_steps > 0 && done % cfg.eval_steps == 0) || done == total);
    if (eval_now) {
      double el = eval_loss();  // collective: every rank evaluates its share
      events.emit({{"event", "eval"}, {"step", done}, {"eval_loss", el}});
      if (tty) std::fprintf(stderr, "\n");
      if (lead) log_info("step ", done, ": eval loss ", el);
      std::string line = nlohmann::ordered_json{{"step", done}, {"eval_loss", el}}.dump() + "\n";
      int fd = lead ? ::open(metrics_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
      if (fd >= 0) {
        ssize_t w = ::write(fd, line.data(), line.size());
        (void)w;
        ::close(fd);
      }
    }
    if (stop_now || (world == 1 && g_stop_signal.load() != 0)) {
      if (tty) std::fprintf(stderr, "\n");
      std::string path = checkpoint(done, loss);
      if (lead)
        log_info("stopped by a signal after step ", done, "; checkpoint ", path, " (continue with --resume)");
      events.emit({{"event", "stopped"}, {"step", done}, {"checkpoint", path}});
      return TrainOutcome::Interrupted;
    }
    if (cfg.save_steps > 0 && done % cfg.save_steps == 0 && done != total) checkpoint(done, loss);
  }
  if (tty) std::fprintf(stderr, "\n");
  checkpoint(total, last_loss);
  if (!lead) return TrainOutcome::Completed;

  // Final outputs, each file written atomically.
  if (lora) {
    save_peft_adapter(*lora, mc, cfg.output_dir, cfg.base_model);
  } else {
    io::NamedTensors t;
    ModelWeights& w = model->weights();
    auto specs = weight_specs(mc, w);
    for (auto& s : specs) t.push_back({s.name, *s.slot});
    io::write_safetensors(path_join(cfg.output_dir, "model.safetensors"), t);
    write_file_atomic(path_join(cfg.output_dir, "config.json"), io::model_config_to_json(mc));
    GenerationConfig gen = io::load_generation_config(cfg.base_model);
    write_file_atomic(path_join(cfg.output_dir, "generation_config.json"), io::generation_config_to_json(gen));
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "tokenizer.model"}) {
      std::string src = path_join(cfg.base_model, f);
      if (file_exists(src)) write_file_atomic(path_join(cfg.output_dir, f), read_file(src));
    }
  }
  events.emit({{"event", "done"}, {"step", total}, {"loss", last_loss}, {"output_dir", cfg.output_dir}});
  log_info("done: ", total, " steps, final loss ", last_loss, "; saved to ", cfg.output_dir);
  return TrainOutcome::Completed;
}

}  // namespace brisk::train
