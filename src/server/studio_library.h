// The studio's model library and what it holds in memory:
//   POST/GET/DELETE /api/models        registered model folders / files (each one a root)
//   POST/GET/DELETE /api/scan-folders  folders whose models are listed (each one a root)
//   POST /api/inference/load, POST /api/inference/unload, GET /api/inference
// Scanning recognises Hugging Face model folders (config.json + *.safetensors), PEFT adapters
// (adapter_config.json) and .gguf files, with their metadata.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/inference_service.h"
#include "server/path_policy.h"
#include "server/studio_routes.h"

namespace brisk::server {

struct ScannedModel {
  std::string path;  // canonical
  std::string kind;  // base | adapter | gguf
  nlohmann::json meta;  // base: {arch, params, dtype, bytes}; adapter: {base_model, r, alpha,
                        // target_modules, bytes}; gguf: {arch, name, params, file_type, bytes}
};

// What `path` (a folder or a .gguf file) is, with its metadata; nullopt when it is none of the
// three kinds. Never throws for unreadable or malformed files: their meta gets an "error".
std::optional<ScannedModel> describe_model(const std::string& path);

// Every model below `root` (depth <= max_depth, symlinks that lead out of root skipped, at most
// max_entries directory entries visited so a huge tree cannot stall a request).
std::vector<ScannedModel> scan_models(const std::string& root, int max_depth = 4, int max_entries = 20000);

// Registers the library routes on `routes`. `service` may be null (inference routes answer 503).
void add_library_routes(StudioRoutes& routes, Store& store, const PathPolicy& paths, InferenceService* service);

}  // namespace brisk::server
