#include "core/log.h"

#include <chrono>
#include <cstdio>
#include <mutex>

#include <nlohmann/json.hpp>

namespace brisk {

static LogLevel g_level = LogLevel::Info;
static bool g_json = false;
static std::mutex g_mutex;

void set_log_level(LogLevel level) { g_level = level; }
void set_log_json(bool json) { g_json = json; }

void log_message(LogLevel level, const std::string& msg) {
  if (level < g_level) return;
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_json) {
    double t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    nlohmann::json j = {{"ts", t}, {"level", names[int(level)]}, {"msg", msg}};
    std::fprintf(stderr, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (level == LogLevel::Info) {
    std::fprintf(stderr, "%s\n", msg.c_str());
  } else {
    std::fprintf(stderr, "%s: %s\n", names[int(level)], msg.c_str());
  }
}

}  // namespace brisk
