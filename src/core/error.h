// brisk::Error: the one exception type for anything a user can cause (bad file, bad flag,
// bad config). Messages carry context (file, tensor name, line) and are printed as one line by
// the CLI. Invariants that user input cannot break use BRISK_ASSERT instead.
#pragma once
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace brisk {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// cat("a", 1, 'b') -> "a1b": builds error messages without printf format strings.
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

// Prefixes the message of any brisk::Error thrown by fn with context ("reading foo.json: ...").
template <typename Fn>
auto with_context(const std::string& context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

// The message of an exception held in a std::exception_ptr (e.g. an HTTP server's exception
// handler argument): what() of a std::exception, "unknown exception" for anything else.
std::string exception_message(std::exception_ptr ep);

[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);

}  // namespace brisk

// Invariant check (not for user input): prints and aborts. Always on, cheap conditions only.
#define BRISK_ASSERT(cond, ...)                                                     \
  do {                                                                              \
    if (!(cond)) ::brisk::assert_fail(#cond, __FILE__, __LINE__, ::brisk::cat(std::string() __VA_OPT__(,) __VA_ARGS__)); \
  } while (0)

// User-facing check: throws brisk::Error with the concatenated message.
#define BRISK_CHECK(cond, ...)                                   \
  do {                                                           \
    if (!(cond)) throw ::brisk::Error(::brisk::cat(__VA_ARGS__)); \
  } while (0)
