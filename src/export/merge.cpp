#include "export/merge.h"

#include <unistd.h>

#include <cctype>
#include <filesystem>

#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/arch.h"
#include "model/weights.h"

namespace brisk::exporter {

namespace fs = std::filesystem;

void merge_lora_into(float* w, const LoraModule& m, float scale) {
  const int64_t r = m.A.dim(0), in = m.A.dim(1), out = m.B.dim(0);
  const float* A = m.A.f32();
  const float* B = m.B.f32();
  parallel_for(out, 16, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      float* row = w + o * in;
      for (int64_t k = 0; k < r; ++k) {
        const float b = scale * B[o * r + k];
        const float* a = A + k * in;
        for (int64_t i = 0; i < in; ++i) row[i] += b * a[i];
      }
    }
  });
}

uint64_t parse_size(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit((unsigned char)s[i]) || s[i] == '.')) ++i;
  BRISK_CHECK(i > 0, "bad size \"", s, "\" (examples: 5GB, 500MB, 2GiB)");
  double v = std::stod(s.substr(0, i));
  std::string unit = s.substr(i);
  for (auto& c : unit) c = char(std::toupper((unsigned char)c));
  double mul = 1;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "KB") mul = 1e3;
  else if (unit == "MB") mul = 1e6;
  else if (unit == "GB") mul = 1e9;
  else if (unit == "KIB") mul = 1024.0;
  else if (unit == "MIB") mul = 1024.0 * 1024;
  else if (unit == "GIB") mul = 1024.0 * 1024 * 1024;
  else throw Error(cat("bad size unit in \"", s, "\" (B, KB, MB, GB, KiB, MiB, GiB)"));
  BRISK_CHECK(v * mul >= 1, "size \"", s, "\" is too small");
  return uint64_t(v * mul);
}

void export_merged(const MergedExportOptions& opt) {
  BRISK_CHECK(opt.dtype == "bf16" || opt.dtype == "f16" || opt.dtype == "f32", "--dtype must be bf16, f16 or f32, not \"",
              opt.dtype, "\"");
  const DType out_t = opt.dtype == "bf16" ? DType::BF16 : opt.dtype == "f16" ? DType::F16 : DType::F32;
  if (fs::exists(opt.out_dir)) {
    BRISK_CHECK(opt.force, opt.out_dir, " already exists (use --force to replace it)");
  }
  ModelConfig cfg = io::load_model_config(opt.base_dir);
  io::ModelWeights base = io::ModelWeights::open(opt.base_dir);
  LoraAdapter adapter;
  bool have_adapter = !opt.adapter_dir.empty();
  if (have_adapter) adapter = load_peft_adapter(opt.adapter_dir, cfg);

  ModelWeights slots;
  slots.layers.resize(size_t(cfg.num_layers));
  auto specs = weight_specs(cfg, slots);
  // Converted tensors live in one arena of the output dtype (the merged model in memory once).
  MemoryPlan plan;
  for (auto& s : specs) plan.add(s.name, out_t, s.shape);
  Arena arena(plan.total());
  std::string parent = fs::path(opt.out_dir).has_parent_path() ? fs::path(opt.out_dir).parent_path().string() : ".";
  std::string tmp = path_join(parent, cat(".", fs::path(opt.out_dir).filename().string(), ".tmp-", ::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  try {
    io::NamedTensors out;
    Progress prog("merge", specs.size(), 0, opt.progress);
    std::vector<float> buf;
    size_t done = 0;
    for (auto& s : specs) {
      base.get_checked(s.name, s.shape);
      buf.resize(size_t(s.shape.numel()));
      base.read_f32(s.name, buf.data());
      if (have_adapter) {
        // Which projection is this? Names are model.layers.{i}.{self_attn|mlp}.{x}_proj.weight.
        for (int64_t l = 0; l < cfg.num_layers; ++l)
          for (int p = 0; p < kNumProj; ++p)
            if (s.name == hf_names::layer(l, cat(proj_parent(Proj(p)), ".", proj_name(Proj(p)), ".weight")) &&
                adapter.at(l, Proj(p)).defined())
              merge_lora_into(buf.data(), adapter.at(l, Proj(p)), adapter.spec.scale());
      }
      Tensor t = arena.tensor(out_t, s.shape);
      convert_floats(buf.data(), DType::F32, t.data, out_t, buf.size());
      out.push_back({s.name, t});
      prog.update(++done, 0);
    }
    prog.finish();
    io::write_safetensors_sharded(tmp, out, opt.shard_bytes);
    cfg.torch_dtype = opt.dtype == "bf16" ? "bfloat16" : opt.dtype == "f16" ? "float16" : "float32";
    write_file_atomic(path_join(tmp, "config.json"), io::model_config_to_json(cfg));
    write_file_atomic(path_join(tmp, "generation_config.json"),
                      io::generation_config_to_json(io::load_generation_config(opt.base_dir)));
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                          "tokenizer.model"}) {
      std::string src = path_join(opt.base_dir, f);
      if (file_exists(src)) write_file_atomic(path_join(tmp, f), read_file(src));
    }
    if (fs::exists(opt.out_dir)) fs::remove_all(opt.out_dir);
    fs::rename(tmp, opt.out_dir);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  log_info("wrote ", opt.out_dir, have_adapter ? " (base + adapter merged)" : "", ", ", opt.dtype);
}

}  // namespace brisk::exporter
