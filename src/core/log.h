// Logging: one line per event on stderr; human-readable by default, JSON lines with
// set_log_json(true) (the CLI's --log-json). Levels: debug < info < warn < error.
#pragma once
#include <string>

#include "core/error.h"

namespace brisk {

enum class LogLevel { Debug, Info, Warn, Error };

void set_log_level(LogLevel level);
void set_log_json(bool json);
void log_message(LogLevel level, const std::string& msg);

template <typename... Args> void log_debug(Args&&... a) { log_message(LogLevel::Debug, cat(std::forward<Args>(a)...)); }
template <typename... Args> void log_info(Args&&... a) { log_message(LogLevel::Info, cat(std::forward<Args>(a)...)); }
template <typename... Args> void log_warn(Args&&... a) { log_message(LogLevel::Warn, cat(std::forward<Args>(a)...)); }
template <typename... Args> void log_error(Args&&... a) { log_message(LogLevel::Error, cat(std::forward<Args>(a)...)); }

}  // namespace brisk
