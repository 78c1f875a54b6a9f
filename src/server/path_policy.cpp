#include "server/path_policy.h"

#include <climits>
#include <cstdlib>

#include "server/auth.h"

namespace brisk::server {

PathPolicy::PathPolicy(Store& store, std::string data_dir) : store_(store) {
  data_dir_ = canonical(data_dir);
  BRISK_CHECK(!data_dir_.empty(), "data dir ", data_dir, " does not exist");
}

std::string PathPolicy::canonical(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return "";
  return buf;
}

bool PathPolicy::is_inside(const std::string& root, const std::string& path) {
  if (root.empty() || path.empty()) return false;
  if (root == "/") return path[0] == '/';
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::vector<std::string> PathPolicy::roots() const {
  std::vector<std::string> out{data_dir_};
  for (const ModelEntry& m : store_.list_models())
    if (std::string c = canonical(m.path); !c.empty()) out.push_back(c);
  for (const std::string& f : store_.list_scan_folders())
    if (std::string c = canonical(f); !c.empty()) out.push_back(c);
  return out;
}

namespace {
void check_absolute(const std::string& path) {
  if (path.empty()) throw AuthError(400, "invalid_path", "the path is empty");
  if (path[0] != '/') throw AuthError(400, "invalid_path", cat("\"", path, "\" is not an absolute path"));
  if (path.find('\0') != std::string::npos) throw AuthError(400, "invalid_path", "the path contains a NUL byte");
}
}  // namespace

std::string PathPolicy::readable(const std::string& path) const {
  check_absolute(path);
  std::string real = canonical(path);
  if (real.empty()) throw AuthError(404, "not_found", cat("\"", path, "\" does not exist"));
  for (const std::string& root : roots())
    if (is_inside(root, real)) return real;
  throw AuthError(403, "path_not_allowed",
                  cat("\"", path, "\" is outside the registered roots (register it with POST /api/models or "
                                  "POST /api/scan-folders)"));
}

std::string PathPolicy::writable(const std::string& path) const {
  check_absolute(path);
  // Walk up to the deepest ancestor that exists; what lies below it is created later and must
  // not climb back out.
  std::string existing = path, rest;
  while (canonical(existing).empty()) {
    size_t slash = existing.find_last_of('/');
    std::string leaf = existing.substr(slash + 1);
    if (leaf == "..") throw AuthError(403, "path_not_allowed", cat("\"", path, "\": `..` in a path that does not exist yet"));
    if (!leaf.empty() && leaf != ".") rest = rest.empty() ? leaf : leaf + "/" + rest;
    existing = slash == 0 ? "/" : existing.substr(0, slash);
  }
  std::string real = canonical(existing);
  if (!rest.empty()) real = real == "/" ? "/" + rest : real + "/" + rest;
  if (real == outputs_dir() || !is_inside(outputs_dir(), real))
    throw AuthError(403, "path_not_allowed",
                    cat("\"", path, "\" is not inside ", outputs_dir(), " (where outputs a client names live)"));
  return real;
}

}  // namespace brisk::server
