// Which files a studio client may name. Every route that takes a path (inference load, runs'
// base_model / dataset / output_dir, exports, dataset preview) goes through PathPolicy: only
// paths inside a registered root are readable, where the roots are the registered models (each
// a folder or .gguf file), the registered scan folders and the data dir. Paths are
// canonicalised with realpath(3) before the check, so `..` components, symlinks that lead out
// of a root, and doubled slashes all resolve to where they really point.
#pragma once
#include <string>
#include <vector>

#include "server/store.h"

namespace brisk::server {

class PathPolicy {
 public:
  PathPolicy(Store& store, std::string data_dir);

  // The canonical path of an existing file or folder inside a root. Throws AuthError 400 for an
  // empty or relative path, 404 when nothing is there, 403 when it resolves outside every root.
  std::string readable(const std::string& path) const;

  // For outputs a client names (a run's output_dir), which may not exist yet: the path must lie
  // strictly inside <data-dir>/outputs once its deepest existing ancestor is canonicalised, and
  // the part that does not exist yet may not contain `..`. Returns the canonical form (the
  // ancestor's realpath + the rest). AuthError 400/403. One folder for client-named outputs
  // keeps them away from the database, secrets, datasets and exports, and lets
  // `DELETE /api/runs/{id}?files=true` remove them without risk to anything else.
  std::string writable(const std::string& path) const;
  std::string outputs_dir() const { return data_dir_ + "/outputs"; }

  // Canonical roots (registered models, scan folders, data dir); roots that no longer exist
  // are left out.
  std::vector<std::string> roots() const;
  const std::string& data_dir() const { return data_dir_; }

  // True when canonical `path` is `root` or below it (component-wise, so /a/bc is not in /a/b).
  static bool is_inside(const std::string& root, const std::string& path);
  // realpath(3), or "" when the path does not exist.
  static std::string canonical(const std::string& path);

 private:
  Store& store_;
  std::string data_dir_;  // canonical
};

}  // namespace brisk::server
