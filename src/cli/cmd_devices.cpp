// `brisk devices`: lists GPUs (and runs the CUDA self-test with --self-test).
#include <cstdio>

#include "cli/commands.h"
#include "core/arena.h"
#include "core/thread_pool.h"
#ifdef BRISK_HAVE_CUDA
#include "backend/cuda/device_info.h"
#endif

namespace {
brisk::cli::Registrar reg("devices", "List compute devices", [](CLI::App& app) {
  auto self_test = std::make_shared<bool>(false);
  app.add_flag("--self-test", *self_test, "Run a trivial CUDA kernel and check its output");
  return [self_test]() -> int {
    std::printf("cpu: %d threads\n", brisk::num_threads());
#ifdef BRISK_HAVE_CUDA
    auto devs = brisk::cuda::list_devices();
    if (devs.empty()) std::printf("cuda: no device\n");
    for (auto& d : devs)
      std::printf("cuda:%d %s (sm_%d%d, %d SMs) %s free of %s\n", d.index, d.name.c_str(), d.cc_major,
                  d.cc_minor, d.sm_count, brisk::format_bytes(double(d.free_bytes)).c_str(),
                  brisk::format_bytes(double(d.total_bytes)).c_str());
    if (*self_test && !devs.empty()) {
      bool ok = brisk::cuda::self_test();
      std::printf("cuda self-test: %s\n", ok ? "ok" : "FAILED");
      return ok ? 0 : 1;
    }
#else
    std::printf("cuda: not built (CPU-only build)\n");
#endif
    return 0;
  };
});
}  // namespace
