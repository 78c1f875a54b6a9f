#include "server/studio_library.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "io/gguf.h"
#include "io/safetensors.h"

namespace brisk::server {
namespace {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;
namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t file_bytes(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : 0;
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  json j = json::parse(in, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::vector<std::string> files_with_suffix(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec) && ends_with(it->path().filename().string(), suffix)) out.push_back(it->path().string());
  std::sort(out.begin(), out.end());
  return out;
}

ScannedModel describe_gguf(const std::string& path) {
  ScannedModel m{path, "gguf", {{"bytes", file_bytes(path)}}};
  try {
    io::GGUFFile f = io::GGUFFile::open(path);
    int64_t params = 0;
    for (const auto& t : f.tensors()) params += t.shape().numel();
    m.meta["arch"] = f.get_string_or("general.architecture", "");
    m.meta["name"] = f.get_string_or("general.name", "");
    m.meta["file_type"] = f.get_int_or("general.file_type", -1);
    m.meta["params"] = params;
  } catch (const std::exception& e) {
    m.meta["error"] = e.what();
  }
  return m;
}

ScannedModel describe_adapter(const std::string& dir) {
  json cfg = read_json_file(path_join(dir, "adapter_config.json"));
  int64_t bytes = 0;
  for (auto& f : files_with_suffix(dir, ".safetensors")) bytes += file_bytes(f);
  return {dir, "adapter",
          {{"base_model", cfg.value("base_model_name_or_path", "")},
           {"r", cfg.value("r", 0)},
           {"alpha", cfg.value("lora_alpha", 0.0)},
           {"target_modules", cfg.contains("target_modules") ? cfg["target_modules"] : json::array()},
           {"bytes", bytes}}};
}

ScannedModel describe_hf(const std::string& dir, const std::vector<std::string>& shards) {
  json cfg = read_json_file(path_join(dir, "config.json"));
  ScannedModel m{dir, "base", {{"arch", cfg.value("model_type", "")}, {"dtype", cfg.value("torch_dtype", "")}}};
  int64_t params = 0, bytes = 0;
  try {
    for (const auto& shard : shards) {
      bytes += file_bytes(shard);
      io::SafeTensorsFile file = io::SafeTensorsFile::open(shard);  // must outlive the loop
      for (const auto& t : file.tensors()) {
        params += t.numel();
        if (m.meta["dtype"] == "") m.meta["dtype"] = t.dtype_name;
      }
    }
  } catch (const std::exception& e) {
    m.meta["error"] = e.what();
  }
  m.meta["params"] = params;
  m.meta["bytes"] = bytes;
  return m;
}

}  // namespace

std::optional<ScannedModel> describe_model(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (ends_with(path, ".gguf")) return describe_gguf(path);
    return std::nullopt;
  }
  if (!fs::is_directory(path, ec)) return std::nullopt;
  if (file_exists(path_join(path, "adapter_config.json"))) return describe_adapter(path);
  if (file_exists(path_join(path, "config.json"))) {
    auto shards = files_with_suffix(path, ".safetensors");
    if (!shards.empty()) return describe_hf(path, shards);
  }
  return std::nullopt;
}

std::vector<ScannedModel> scan_models(const std::string& root, int max_depth, int max_entries) {
  std::vector<ScannedModel> out;
  std::error_code ec;
  // Directory symlinks are not followed (the default); file symlinks are, and are checked.
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (auto top = describe_model(root); top && top->kind != "gguf") return {*top};
  for (int visited = 0; !ec && it != end && visited < max_entries; it.increment(ec), ++visited) {
    const std::string p = it->path().string();
    std::string real = PathPolicy::canonical(p);
    if (real.empty() || !PathPolicy::is_inside(root, real)) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_directory(ec) && !it->is_symlink(ec)) {
      if (auto m = describe_model(real)) {
        out.push_back(std::move(*m));
        it.disable_recursion_pending();  // a model's own subfolders (checkpoints) are not listed apart
      } else if (it.depth() + 1 >= max_depth) {
        it.disable_recursion_pending();
      }
    } else if (ends_with(p, ".gguf")) {
      if (auto m = describe_model(real)) out.push_back(std::move(*m));
    }
  }
  return out;
}

namespace {

json scanned_json(const ScannedModel& m) { return {{"path", m.path}, {"kind", m.kind}, {"meta", m.meta}}; }

json model_entry_json(const ModelEntry& m) {
  json meta = json::parse(m.meta_json, nullptr, false);
  return {{"id", m.id}, {"path", m.path}, {"kind", m.kind}, {"meta", meta.is_discarded() ? json::object() : meta}};
}

std::optional<ModelEntry> model_by_id(Store& store, int64_t id) {
  for (auto& m : store.list_models())
    if (m.id == id) return m;
  return std::nullopt;
}

// A canonical absolute path the client may register: it must exist; registering makes it a root.
std::string registrable(const std::string& path) {
  if (path.empty() || path[0] != '/') throw AuthError(400, "invalid_path", cat("\"", path, "\" is not an absolute path"));
  std::string real = PathPolicy::canonical(path);
  if (real.empty()) throw AuthError(404, "not_found", cat("\"", path, "\" does not exist"));
  if (real == "/") throw AuthError(403, "path_not_allowed", "the filesystem root cannot be registered");
  return real;
}

InferenceService& need(InferenceService* s) {
  if (!s) throw AuthError(503, "unavailable", "inference is not available in this server");
  return *s;
}

}  // namespace

void add_library_routes(StudioRoutes& routes, Store& store, const PathPolicy& paths, InferenceService* service) {
  Store* st = &store;
  const PathPolicy* policy = &paths;

  // --- registered models
  routes.add("GET", "/api/models", Access::User, [st, policy](const Request&, Response& res, const User&) {
    json registered = json::array(), scanned = json::array(), studio = json::array();
    for (auto& m : st->list_models()) registered.push_back(model_entry_json(m));
    for (auto& folder : st->list_scan_folders())
      if (std::string real = PathPolicy::canonical(folder); !real.empty())
        for (auto& m : scan_models(real)) scanned.push_back(scanned_json(m));
    // What the studio made: trained adapters (runs/<id>/output, outputs/...) and exports.
    for (const char* sub : {"runs", "outputs", "exports"})
      if (std::string real = PathPolicy::canonical(path_join(policy->data_dir(), sub)); !real.empty())
        for (auto& m : scan_models(real)) studio.push_back(scanned_json(m));
    send_json_status(res, 200, {{"models", registered}, {"scanned", scanned}, {"studio", studio}});
  });
  routes.add("POST", "/api/models", Access::User, [st](const Request& req, Response& res, const User&) {
    json body = parse_json_body(req);
    std::string real = registrable(required_string(body, "path"));
    auto m = describe_model(real);
    if (!m)
      throw AuthError(400, "not_a_model",
                      cat("\"", real, "\" is not a model folder (config.json + *.safetensors), adapter (adapter_config.json) or .gguf file"));
    int64_t id = st->upsert_model(real, m->kind, m->meta.dump());
    send_json_status(res, 201, model_entry_json(*model_by_id(*st, id)));
  });
  routes.add("DELETE", R"(/api/models/(\d+))", Access::User, [st](const Request& req, Response& res, const User&) {
    int64_t id = path_id(req);
    if (!st->delete_model(id)) throw AuthError(404, "not_found", cat("no model ", id));
    res.status = 204;  // only the registration: the files stay
  });

  // --- scan folders
  routes.add("GET", "/api/scan-folders", Access::User, [st](const Request&, Response& res, const User&) {
    json out = json::array();
    for (auto& folder : st->list_scan_folders()) {
      std::string real = PathPolicy::canonical(folder);
      json models = json::array();
      if (!real.empty())
        for (auto& m : scan_models(real)) models.push_back(scanned_json(m));
      out.push_back({{"path", folder}, {"exists", !real.empty()}, {"models", models}});
    }
    send_json_status(res, 200, {{"folders", out}});
  });
  routes.add("POST", "/api/scan-folders", Access::User, [st](const Request& req, Response& res, const User&) {
    json body = parse_json_body(req);
    std::string real = registrable(required_string(body, "path"));
    std::error_code ec;
    if (!std::filesystem::is_directory(real, ec)) throw AuthError(400, "not_a_folder", cat("\"", real, "\" is not a folder"));
    st->add_scan_folder(real);
    json models = json::array();
    for (auto& m : scan_models(real)) models.push_back(scanned_json(m));
    send_json_status(res, 201, {{"path", real}, {"exists", true}, {"models", models}});
  });
  routes.add("DELETE", "/api/scan-folders", Access::User, [st](const Request& req, Response& res, const User&) {
    std::string path = req.get_param_value("path");
    if (path.empty()) throw AuthError(400, "invalid_request", "the folder goes in the query: ?path=/abs/folder");
    if (!st->remove_scan_folder(path)) throw AuthError(404, "not_found", cat("\"", path, "\" is not a scan folder"));
    res.status = 204;
  });

  // --- what is loaded for /v1
  routes.add("GET", "/api/inference", Access::User, [service](const Request&, Response& res, const User&) {
    json out = json::array();
    for (const ModelInfo& m : need(service).list())
      out.push_back({{"name", m.name}, {"path", m.path}, {"device", m.device}, {"adapters", m.adapters},
                     {"context", m.context}, {"parallel", m.parallel}, {"created", m.created}});
    send_json_status(res, 200, {{"models", out}, {"ids", need(service).model_ids()}});
  });
  routes.add("POST", "/api/inference/load", Access::User,
             [st, policy, service](const Request& req, Response& res, const User&) {
               InferenceService& svc = need(service);
               json body = parse_json_body(req);
               ModelLoadOptions opt;
               auto model = body.find("model");
               if (model != body.end() && model->is_number_integer()) {
                 auto entry = model_by_id(*st, model->get<int64_t>());
                 if (!entry) throw AuthError(404, "not_found", cat("no registered model ", model->get<int64_t>()));
                 opt.path = policy->readable(entry->path);
               } else if (model != body.end() && model->is_string()) {
                 opt.path = policy->readable(model->get<std::string>());
               } else {
                 throw AuthError(400, "invalid_request", "\"model\" (registered model id or path) is required");
               }
               if (body.contains("name")) opt.name = required_string(body, "name");
               if (body.contains("device")) opt.device = required_string(body, "device");
               if (auto p = body.find("parallel"); p != body.end()) {
                 if (!p->is_number_integer() || *p < 1 || *p > 256) throw AuthError(400, "invalid_request", "\"parallel\" must be an integer in [1, 256]");
                 opt.parallel = p->get<int>();
               }
               if (auto a = body.find("adapters"); a != body.end() && !a->is_null()) {
                 if (!a->is_array()) throw AuthError(400, "invalid_request", "\"adapters\" must be an array of {name, path}");
                 for (auto& ad : *a) {
                   if (!ad.is_object()) throw AuthError(400, "invalid_request", "\"adapters\" must be an array of {name, path}");
                   opt.adapters.emplace_back(required_string(ad, "name"), policy->readable(required_string(ad, "path")));
                 }
               }
               std::string name;
               try {
                 name = svc.load(opt);
               } catch (const Error& e) {
                 throw AuthError(400, "load_failed", e.what());
               }
               for (const ModelInfo& m : svc.list())
                 if (m.name == name)
                   return send_json_status(res, 201, {{"name", m.name}, {"path", m.path}, {"device", m.device},
                                                      {"adapters", m.adapters}, {"context", m.context}});
             });
  routes.add("POST", "/api/inference/unload", Access::User, [service](const Request& req, Response& res, const User&) {
    json body = parse_json_body(req);
    std::string name = required_string(body, "name");
    try {
      need(service).unload(name);
    } catch (const ModelNotFound&) {
      throw AuthError(404, "not_found", cat("no loaded model \"", name, "\""));
    }
    res.status = 204;
  });
}

}  // namespace brisk::server
