#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace brisk {

void assert_fail(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "brisk: internal error: assertion `%s` failed at %s:%d%s%s\n", expr, file,
               line, msg.empty() ? "" : ": ", msg.c_str());
  std::abort();
}

std::string exception_message(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown exception";
}

}  // namespace brisk
