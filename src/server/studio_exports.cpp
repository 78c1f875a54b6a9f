#include "server/studio_exports.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>

#include "core/fs.h"
#include "core/log.h"
#include "export/gguf_export.h"
#include "export/merge.h"

namespace brisk::server {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

const char* kQuants[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"};

std::string random_suffix() {
  unsigned char raw[6];
  std::ifstream("/dev/urandom", std::ios::binary).read(reinterpret_cast<char*>(raw), sizeof raw);
  std::string out;
  for (unsigned char c : raw) out += {"0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]};
  return out;
}

[[noreturn]] void bad(const std::string& msg) { throw AuthError(400, "invalid_request", msg); }

std::string out_path_for(const std::string& dir, const ExportRequest& r) {
  if (r.format == "merged") return path_join(dir, "model");
  if (r.format == "gguf") return path_join(dir, cat("model-", r.quant, ".gguf"));
  return path_join(dir, "adapter.gguf");
}

}  // namespace

ExportManager::ExportManager(Store& store, const PathPolicy& paths) : store_(store), paths_(paths) {
  for (const ExportJob& j : store_.list_exports())
    if (!is_finished(j.status)) store_.set_export_status(j.id, "failed");  // the server that ran it is gone
  thread_ = std::thread([this] { worker(); });
}

ExportManager::~ExportManager() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    for (auto& [id, req] : queue_) store_.set_export_status(id, "failed");
    queue_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

ExportRequest ExportManager::request_from_json(const json& body) const {
  ExportRequest r;
  r.format = required_string(body, "format");
  if (r.format != "merged" && r.format != "gguf" && r.format != "lora-gguf")
    bad("\"format\" must be merged, gguf or lora-gguf");
  if (body.contains("quant")) {
    r.quant = required_string(body, "quant");
    if (std::find(std::begin(kQuants), std::end(kQuants), r.quant) == std::end(kQuants))
      bad("\"quant\" must be one of f32, f16, bf16, q8_0, q4_0, q4_k_m, q5_k_m, q6_k");
  }
  if (body.contains("dtype")) {
    r.dtype = required_string(body, "dtype");
    if (r.dtype != "bf16" && r.dtype != "f16" && r.dtype != "f32") bad("\"dtype\" must be bf16, f16 or f32");
  }
  auto src = body.find("source");
  std::string source_dir, recorded_base;
  if (src != body.end() && src->is_number_integer()) {  // a run's adapter
    r.run_id = src->get<int64_t>();
    auto run = store_.run_by_id(r.run_id);
    if (!run) throw AuthError(404, "not_found", cat("no run ", r.run_id));
    if (run->status != "completed") throw AuthError(409, "run_not_completed", cat("run ", r.run_id, " is ", run->status));
    source_dir = paths_.readable(run->output_dir);
    json cfg = json::parse(run->config_json, nullptr, false);
    if (cfg.is_object() && cfg.contains("base_model") && cfg["base_model"].is_string()) recorded_base = cfg["base_model"];
  } else if (src != body.end() && src->is_string()) {
    source_dir = paths_.readable(src->get<std::string>());
  } else {
    bad("\"source\" (run id, or the path of a model or adapter folder) is required");
  }
  bool is_adapter = file_exists(path_join(source_dir, "adapter_config.json"));
  if (is_adapter) {
    if (recorded_base.empty()) {
      std::ifstream in(path_join(source_dir, "adapter_config.json"));
      json ac = json::parse(in, nullptr, false);
      if (ac.is_object() && ac.contains("base_model_name_or_path") && ac["base_model_name_or_path"].is_string())
        recorded_base = ac["base_model_name_or_path"];
    }
    std::string base = body.contains("base") ? required_string(body, "base") : recorded_base;
    if (base.empty()) bad("the adapter does not name its base model: pass \"base\" (the base model folder)");
    r.adapter_dir = source_dir;
    r.base_dir = paths_.readable(base);
  } else {
    if (!file_exists(path_join(source_dir, "config.json"))) bad(cat(source_dir, " is neither a model folder nor an adapter"));
    if (r.format != "gguf") bad(cat("format ", r.format, " needs a LoRA adapter as the source; ", source_dir, " is a full model"));
    r.base_dir = source_dir;
  }
  return r;
}

int64_t ExportManager::submit(const ExportRequest& req) {
  ExportJob job;
  job.run_id = req.run_id;
  job.model_id = req.model_id;
  job.format = req.format;
  job.status = "queued";
  job.created = int64_t(std::time(nullptr));
  // The folder is named before the row exists (the row records the output path).
  std::string dir = path_join(paths_.data_dir(), cat("exports/", job.created, "-", random_suffix()));
  job.path = out_path_for(dir, req);
  std::lock_guard lk(mu_);
  BRISK_CHECK(!stopping_, "the server is shutting down");
  int64_t id = store_.insert_export(job);
  queue_.emplace_back(id, req);
  queue_.back().second.out_path = job.path;
  events_[id].push_back(json{{"event", "status"}, {"status", "queued"}, {"path", job.path}}.dump());
  cv_.notify_all();
  return id;
}

void ExportManager::emit(int64_t id, json ev) {
  {
    std::lock_guard lk(mu_);
    events_[id].push_back(ev.dump());
  }
  cv_.notify_all();
}

void ExportManager::worker() {
  for (;;) {
    std::pair<int64_t, ExportRequest> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    run_job(job.first, job.second);
  }
}

void ExportManager::run_job(int64_t id, const ExportRequest& r) {
  const std::string& out_path = r.out_path;
  store_.set_export_status(id, "running");
  emit(id, {{"event", "status"}, {"status", "running"}});
  auto t0 = std::chrono::steady_clock::now();
  try {
    make_dirs(out_path.substr(0, out_path.find_last_of('/')));
    json done = {{"event", "status"}, {"status", "completed"}, {"path", out_path}};
    if (r.format == "merged") {
      exporter::MergedExportOptions o;
      o.base_dir = r.base_dir;
      o.adapter_dir = r.adapter_dir;
      o.out_dir = out_path;
      o.dtype = r.dtype;
      o.progress = false;
      exporter::export_merged(o);
    } else if (r.format == "gguf") {
      exporter::GGUFExportOptions o;
      o.model_dir = r.base_dir;
      o.adapter_dir = r.adapter_dir;
      o.out_path = out_path;
      o.quant = r.quant;
      o.progress = false;
      exporter::GGUFExportReport rep = exporter::export_gguf(o);
      done["bytes"] = rep.bytes;
      json quality = json::object();
      for (auto& [type, st] : rep.per_type) quality[type] = {{"tensors", st.tensors}, {"relative_rmse", st.relative_rmse()}};
      done["quality"] = quality;
      done["notes"] = rep.fallbacks;
    } else {
      exporter::LoraGGUFOptions o;
      o.adapter_dir = r.adapter_dir;
      o.base_dir = r.base_dir;
      o.out_path = out_path;
      exporter::export_lora_gguf(o);
    }
    done["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    store_.set_export_status(id, "completed");
    emit(id, done);
  } catch (const std::exception& e) {
    log_warn("export ", id, " failed: ", e.what());
    {
      std::lock_guard lk(mu_);
      errors_[id] = e.what();
    }
    store_.set_export_status(id, "failed");
    emit(id, {{"event", "status"}, {"status", "failed"}, {"error", e.what()}});
  }
}

std::vector<std::pair<int64_t, std::string>> ExportManager::wait_events(int64_t id, int64_t after, int timeout_ms) {
  std::unique_lock lk(mu_);
  auto have = [&] { return int64_t(events_[id].size()) > after; };
  cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), have);
  std::vector<std::pair<int64_t, std::string>> out;
  auto& evs = events_[id];
  for (int64_t i = std::max<int64_t>(after, 0); i < int64_t(evs.size()); ++i) out.emplace_back(i + 1, evs[size_t(i)]);
  return out;
}

json ExportManager::to_json(const ExportJob& j) {
  json out = {{"id", j.id},
              {"format", j.format},
              {"status", j.status},
              {"created", j.created},
              {"path", j.path},
              {"run_id", j.run_id ? json(j.run_id) : json(nullptr)},
              {"error", nullptr}};
  std::lock_guard lk(mu_);
  if (auto e = errors_.find(j.id); e != errors_.end()) out["error"] = e->second;
  return out;
}

std::optional<json> ExportManager::job_json(int64_t id) {
  for (const ExportJob& j : store_.list_exports())
    if (j.id == id) return to_json(j);
  return std::nullopt;
}

std::vector<json> ExportManager::list_json() {
  std::vector<json> out;
  auto jobs = store_.list_exports();
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) out.push_back(to_json(*it));  // newest first
  return out;
}

void add_export_routes(StudioRoutes& routes, ExportManager& exports) {
  ExportManager* ex = &exports;
  routes.add("POST", "/api/exports", Access::User, [ex](const Request& req, Response& res, const User&) {
    int64_t id = ex->submit(ex->request_from_json(parse_json_body(req)));
    send_json_status(res, 202, *ex->job_json(id));
  });
  routes.add("GET", "/api/exports", Access::User, [ex](const Request&, Response& res, const User&) {
    send_json_status(res, 200, {{"exports", ex->list_json()}});
  });
  routes.add("GET", R"(/api/exports/(\d+))", Access::User, [ex](const Request& req, Response& res, const User&) {
    int64_t id = path_id(req);
    auto j = ex->job_json(id);
    if (!j) throw AuthError(404, "not_found", cat("no export ", id));
    send_json_status(res, 200, *j);
  });
  routes.add("GET", R"(/api/exports/(\d+)/events)", Access::User, [ex](const Request& req, Response& res, const User&) {
    int64_t id = path_id(req);
    if (!ex->job_json(id)) throw AuthError(404, "not_found", cat("no export ", id));
    auto cursor = std::make_shared<int64_t>(0);
    if (std::string h = req.get_header_value("Last-Event-ID"); !h.empty()) *cursor = std::max<int64_t>(0, std::atoll(h.c_str()));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [ex, id, cursor](size_t, httplib::DataSink& sink) {
      for (auto& [seq, data] : ex->wait_events(id, *cursor, 1000)) {
        std::string msg = cat("id: ", seq, "\ndata: ", data, "\n\n");
        if (!sink.write(msg.data(), msg.size())) return false;
        *cursor = seq;
      }
      auto j = ex->job_json(id);
      // Finished and everything sent (events of a job from a previous server are gone: end).
      if (!j || (ExportManager::is_finished((*j)["status"]) && ex->wait_events(id, *cursor, 0).empty())) sink.done();
      return true;
    });
  });
}

}  // namespace brisk::server
