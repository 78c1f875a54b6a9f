#include "server/studio_datasets.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>

#include "core/fs.h"
#include "core/log.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "train/data_formats.h"
#include "train/data_readers.h"
#include "train/data_tokenize.h"

namespace brisk::server {
namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;
using httplib::Request;
using httplib::Response;

// Datasets up to this size are parsed in full at upload (validated, rows counted); larger ones
// are checked by their first rows and their lines counted.
constexpr int64_t kFullParseBytes = int64_t(64) << 20;
constexpr size_t kSniffBytes = 64 << 10;

std::string extension_of(const std::string& name) {
  size_t dot = name.find_last_of('.');
  return dot == std::string::npos ? "" : name.substr(dot + 1);
}

// A file name safe to put in a path: the client's base name with anything but [A-Za-z0-9._-]
// replaced, no leading dot.
std::string safe_file_name(const std::string& name) {
  std::string base = name.substr(name.find_last_of('/') == std::string::npos ? 0 : name.find_last_of('/') + 1);
  for (char& c : base)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  while (!base.empty() && base[0] == '.') base.erase(0, 1);
  return base.substr(0, 120);
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  std::ifstream("/dev/urandom", std::ios::binary).read(raw.data(), std::streamsize(bytes));
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) out += {kHex[c >> 4], kHex[c & 15]};
  return out;
}

// Removes a file when it goes out of scope unless released: the temp file of an upload that
// did not finish.
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

json dataset_json(const Dataset& d) {
  size_t slash = d.format.find('/');
  return {{"id", d.id},
          {"name", d.name},
          {"bytes", d.bytes},
          {"rows", d.rows},
          {"file_type", d.format.substr(0, slash)},
          {"format", slash == std::string::npos ? "" : d.format.substr(slash + 1)},
          {"created", d.created}};
}

int64_t count_lines(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return -1;
  int64_t lines = 0;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    for (size_t i = 0; i < n; ++i) lines += buf[i] == '\n';
  std::fclose(f);
  return lines;
}

// The first `max_rows` rows of a dataset file: for JSONL only as many lines as needed are read.
std::vector<ojson> first_rows(const std::string& path, const std::string& file_type, size_t max_rows) {
  if (file_type == "jsonl") {
    std::ifstream in(path, std::ios::binary);
    std::string text, line;
    size_t lines = 0;
    while (lines < max_rows && std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      text += line + "\n";
      ++lines;
    }
    auto src = train::parse_jsonl(text, path);
    return std::move(src.rows);
  }
  auto src = train::read_source_rows(path);
  if (src.rows.size() > max_rows) src.rows.resize(max_rows);
  return std::move(src.rows);
}

}  // namespace

std::string sniff_dataset_type(const std::string& ext, std::string_view head) {
  if (head.find('\0') != std::string_view::npos) return "";  // binary
  if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);
  size_t first = head.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return "";  // empty
  char c = head[first];
  if (ext == "jsonl") return c == '{' ? "jsonl" : "";
  if (ext == "json") return c == '[' || c == '{' ? "json" : "";
  if (ext == "csv") return c != '[' && c != '{' && head.find('\n') != std::string_view::npos ? "csv" : "";
  return "";
}

std::vector<PreviewRow> preview_rows(const std::vector<ojson>& rows, const std::string& format,
                                     const text::Tokenizer& tok, const text::ChatTemplate* tmpl, bool responses_only) {
  std::string fmt = format == "auto" ? train::detect_format_of(rows) : format;
  std::vector<PreviewRow> out;
  for (const ojson& row : rows) {
    PreviewRow p;
    try {
      // The trainer's own path (dataset.cpp tokenize_row): text, chat template, or plain pair.
      train::ParsedRow parsed = train::parse_row(row, fmt);
      train::Example ex;
      if (parsed.is_text) ex = train::tokenize_text(parsed.text, tok);
      else if (tmpl) ex = train::tokenize_chat(parsed.messages, parsed.tools, parsed.first_trained_message, tok, *tmpl,
                                               responses_only, ojson::object());
      else if (parsed.has_plain) ex = train::tokenize_prompt_response(parsed.plain_prompt, parsed.plain_response, tok, responses_only);
      else throw Error(cat("format ", fmt, " needs the model's chat template, and the model has none"));
      p.tokens = int64_t(ex.ids.size());
      for (size_t i = 0; i < ex.ids.size();) {
        bool trained = ex.labels[i] != train::kIgnoreLabel;
        size_t j = i;
        while (j < ex.ids.size() && (ex.labels[j] != train::kIgnoreLabel) == trained) ++j;
        std::string piece = tok.decode(std::vector<int32_t>(ex.ids.begin() + ptrdiff_t(i), ex.ids.begin() + ptrdiff_t(j)));
        if (trained) {
          p.trained_tokens += int64_t(j - i);
          p.trained_spans.emplace_back(int64_t(p.text.size()), int64_t(p.text.size() + piece.size()));
        }
        p.text += piece;
        p.segments.emplace_back(std::move(piece), trained);
        i = j;
      }
    } catch (const Error& e) {
      p.error = e.what();
    }
    out.push_back(std::move(p));
  }
  return out;
}

void add_dataset_routes(StudioRoutes& routes, Store& store, const PathPolicy& paths, int64_t max_upload_bytes) {
  Store* st = &store;
  const PathPolicy* policy = &paths;
  const std::string dir = path_join(paths.data_dir(), "datasets");

  routes.add_upload("/api/datasets", Access::User, [st, dir, max_upload_bytes](const Request& req, Response& res,
                                                                               const httplib::ContentReader& reader,
                                                                               const User&) {
    std::string name = safe_file_name(req.get_param_value("name"));
    std::string ext = extension_of(name);
    // Refusals before the body is read still read it (and drop it), as httplib does for its own
    // 413: a reply sent over an unread body is often lost to a connection reset.
    auto refuse = [&](int status, const char* code, const std::string& msg) {
      reader([](const char*, size_t) { return true; });
      throw AuthError(status, code, msg);
    };
    if (ext != "jsonl" && ext != "json" && ext != "csv")
      refuse(415, "unsupported_type", "name the file with ?name=FILE.jsonl, .json or .csv");
    if (req.is_multipart_form_data())
      refuse(415, "unsupported_type", "send the file itself as the body, not a multipart form");
    if (req.has_header("Content-Length") &&
        std::strtoll(req.get_header_value("Content-Length").c_str(), nullptr, 10) > max_upload_bytes)
      refuse(413, "too_large", cat("datasets are limited to ", max_upload_bytes, " bytes (--max-upload-mb)"));

    make_dirs(dir);
    std::string final_path = path_join(dir, cat(random_hex(6), "-", name));
    RemoveOnExit tmp{path_join(dir, cat(".upload-", random_hex(8), ".", ext))};
    int fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    BRISK_CHECK(fd >= 0, "cannot create ", tmp.path, ": ", std::strerror(errno));
    int64_t bytes = 0;
    bool too_large = false, write_failed = false;
    std::string head;
    bool complete = reader([&](const char* data, size_t len) {
      if (too_large || bytes + int64_t(len) > max_upload_bytes) return (too_large = true);  // drain, drop
      if (head.size() < kSniffBytes) head.append(data, std::min(len, kSniffBytes - head.size()));
      for (size_t off = 0; off < len;) {
        ssize_t n = ::write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return !(write_failed = true);  // the disk failed: stop reading
        off += size_t(n);
      }
      bytes += int64_t(len);
      return true;
    });
    bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (too_large) throw AuthError(413, "too_large", cat("datasets are limited to ", max_upload_bytes, " bytes (--max-upload-mb)"));
    BRISK_CHECK(!write_failed && synced, "writing ", tmp.path, " failed: ", std::strerror(errno));
    if (!complete) throw AuthError(400, "incomplete_upload", "the upload ended before the whole body arrived");
    if (sniff_dataset_type(ext, head).empty())
      throw AuthError(415, "unsupported_type", cat("the content is not ", ext, " (checked by its first bytes)"));

    // Validation with the trainer's own readers, so a dataset that uploads is one that trains.
    Dataset d;
    d.name = name;
    d.bytes = bytes;
    std::string row_format;
    try {
      std::vector<ojson> sample;
      if (bytes <= kFullParseBytes) {
        auto src = train::read_source_rows(tmp.path);
        d.rows = int64_t(src.rows.size());
        sample.assign(src.rows.begin(), src.rows.begin() + ptrdiff_t(std::min<size_t>(src.rows.size(), 100)));
      } else {
        sample = first_rows(tmp.path, ext, 100);
        d.rows = ext == "json" ? -1 : count_lines(tmp.path) - (ext == "csv" ? 1 : 0);
      }
      row_format = train::detect_format_of(sample);
    } catch (const Error& e) {
      // Messages name the temp file; the client knows its file by the name it sent.
      std::string msg = e.what();
      for (size_t p; (p = msg.find(tmp.path)) != std::string::npos;) msg.replace(p, tmp.path.size(), name);
      throw AuthError(400, "invalid_dataset", msg);
    }
    d.format = ext + "/" + row_format;
    BRISK_CHECK(::rename(tmp.path.c_str(), final_path.c_str()) == 0, "rename to ", final_path, ": ", std::strerror(errno));
    tmp.path.clear();
    d.path = final_path;
    d.created = int64_t(std::time(nullptr));
    try {
      d.id = st->insert_dataset(d);
    } catch (...) {
      ::unlink(final_path.c_str());
      throw;
    }
    send_json_status(res, 201, dataset_json(d));
  });

  routes.add("GET", "/api/datasets", Access::User, [st](const Request&, Response& res, const User&) {
    json out = json::array();
    for (auto& d : st->list_datasets()) out.push_back(dataset_json(d));
    send_json_status(res, 200, {{"datasets", out}});
  });

  routes.add("DELETE", R"(/api/datasets/(\d+))", Access::User, [st, policy](const Request& req, Response& res, const User&) {
    int64_t id = path_id(req);
    auto d = st->dataset_by_id(id);
    if (!d) throw AuthError(404, "not_found", cat("no dataset ", id));
    st->delete_dataset(id);
    // Only files the studio wrote: inside <data-dir>/datasets.
    std::string real = PathPolicy::canonical(d->path);
    if (!real.empty() && PathPolicy::is_inside(path_join(policy->data_dir(), "datasets"), real)) ::unlink(real.c_str());
    res.status = 204;
  });

  routes.add("GET", R"(/api/datasets/(\d+)/preview)", Access::User, [st, policy](const Request& req, Response& res, const User&) {
    int64_t id = path_id(req);
    auto d = st->dataset_by_id(id);
    if (!d) throw AuthError(404, "not_found", cat("no dataset ", id));
    std::string model = req.get_param_value("model");
    if (model.empty()) throw AuthError(400, "invalid_request", "?model= (registered model id or path) is required");
    std::string model_path;
    if (model.find_first_not_of("0123456789") == std::string::npos) {
      for (auto& m : st->list_models())
        if (std::to_string(m.id) == model) model_path = m.path;
      if (model_path.empty()) throw AuthError(404, "not_found", cat("no registered model ", model));
    }
    model_path = policy->readable(model_path.empty() ? model : model_path);
    int rows = 5;
    if (req.has_param("rows")) {
      rows = std::atoi(req.get_param_value("rows").c_str());
      if (rows < 1 || rows > 50) throw AuthError(400, "invalid_request", "rows must be in [1, 50]");
    }
    std::string responses_only = req.get_param_value("responses_only");
    json out = json::array();
    std::string format;
    try {
      text::Tokenizer tok = text::Tokenizer::load(model_path);
      std::unique_ptr<text::ChatTemplate> tmpl;
      if (auto src = text::find_chat_template(model_path, false)) tmpl = std::make_unique<text::ChatTemplate>(src->text, src->origin);
      size_t slash = d->format.find('/');
      auto sample = first_rows(d->path, d->format.substr(0, slash), size_t(rows));
      format = train::detect_format_of(sample);
      for (auto& p : preview_rows(sample, format, tok, tmpl.get(), responses_only != "false")) {
        json segs = json::array(), spans = json::array();
        for (auto& [text, trained] : p.segments) segs.push_back({{"text", text}, {"trained", trained}});
        for (auto& [a, b] : p.trained_spans) spans.push_back({a, b});
        json row = {{"text", p.text}, {"segments", segs}, {"trained_spans", spans},
                    {"tokens", p.tokens}, {"trained_tokens", p.trained_tokens}};
        if (!p.error.empty()) row["error"] = p.error;
        out.push_back(row);
      }
    } catch (const Error& e) {
      throw AuthError(400, "preview_failed", e.what());
    }
    send_json_status(res, 200, {{"dataset", id}, {"model", model_path}, {"format", format}, {"spans", "bytes"}, {"rows", out}});
  });
}

}  // namespace brisk::server
