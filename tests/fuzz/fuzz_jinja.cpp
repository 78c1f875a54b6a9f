// libFuzzer target: any input parsed as a Jinja template and rendered against a small chat-like
// context must either render or throw brisk::Error; never crash, hang or exhaust memory.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/jinja/template.h"

namespace {

const brisk::text::jinja::Value& context() {
  static const brisk::text::jinja::Value ctx = brisk::text::jinja::from_json(nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "sys"},
      {"role": "user", "content": "hi <think>x</think> there"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, true]}}}]},
      {"role": "tool", "content": "42"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "n": 3
  })"));
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // templates are small; bigger inputs only slow the fuzzer
  brisk::text::jinja::Limits limits;
  limits.max_steps = 100'000;
  limits.max_output_bytes = 1 << 20;
  limits.max_range = 10'000;
  try {
    brisk::text::jinja::Template t(std::string(reinterpret_cast<const char*>(data), size));
    t.render(context(), limits);
  } catch (const brisk::Error&) {
    // Expected for invalid or failing templates.
  }
  return 0;
}
