#include "train/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include "core/fs.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace brisk::train {

namespace fs = std::filesystem;

std::string checkpoints_root(const std::string& output_dir) { return path_join(output_dir, "checkpoints"); }

static std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::string root = checkpoints_root(output_dir);
  if (!dir_exists(root)) return out;
  for (auto& e : fs::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) != 0 || !e.is_directory()) continue;
    std::string num = n.substr(11);
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;  // temp folders
    if (!file_exists(path_join(e.path().string(), "trainer_state.json"))) continue;
    out.push_back({std::stoll(num), e.path().string()});
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string save_checkpoint(const std::string& output_dir, const CheckpointState& st, const Model& model,
                            const LoraAdapter* lora, const std::vector<TrainGrad>& params, AdamW& opt,
                            const std::string& base_model, int64_t keep) {
  std::string root = checkpoints_root(output_dir);
  make_dirs(root);
  std::string final_dir = path_join(root, cat("checkpoint-", st.step));
  std::string tmp = path_join(root, cat(".tmp-checkpoint-", st.step, "-", ::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  if (lora) {
    save_peft_adapter(*lora, model.config(), tmp, base_model);
  } else {
    io::NamedTensors t;
    for (const TrainGrad& p : params) t.push_back({p.name, p.value});
    io::write_safetensors(path_join(tmp, "model.safetensors"), t);
  }
  io::write_safetensors(path_join(tmp, "optimizer.safetensors"), opt.state_tensors());
  nlohmann::ordered_json j = {
      {"step", st.step}, {"total_steps", st.total_steps}, {"last_loss", st.last_loss}, {"optimizer_steps", opt.steps()},
      {"data_position", {{"epoch", st.epoch}, {"rows_into_epoch", st.rows_into_epoch}, {"rows_per_epoch", st.rows_per_epoch},
                         {"global_batch_rows", st.global_batch_rows}, {"world_size", st.world_size}}},
      {"rng", {{"seed", st.seed}, {"streams", "row order: seed+epoch; dropout: seed^step^micro-batch per layer/module"}}},
      {"config", st.config}};
  write_file_atomic(path_join(tmp, "trainer_state.json"), j.dump(2) + "\n");
  // Replace an older checkpoint of the same step (a resumed run saving again) only now.
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) throw Error(cat("cannot finish checkpoint ", final_dir, ": ", ec.message()));
  if (keep > 0) {
    auto all = list_checkpoints(output_dir);
    for (size_t i = 0; i + size_t(keep) < all.size(); ++i) fs::remove_all(all[i].second, ec);
  }
  return final_dir;
}

CheckpointState load_checkpoint(const std::string& dir, Model& model, LoraAdapter* lora,
                                std::vector<TrainGrad>& params, AdamW& opt) {
  std::string sp = path_join(dir, "trainer_state.json");
  BRISK_CHECK(file_exists(sp), dir, " is not a brisk checkpoint (no trainer_state.json)");
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(read_file(sp));
  } catch (const nlohmann::json::exception& e) {
    throw Error(cat(sp, ": invalid JSON: ", e.what()));
  }
  CheckpointState st;
  st.step = j.value("step", int64_t(0));
  st.total_steps = j.value("total_steps", int64_t(0));
  st.last_loss = j.value("last_loss", 0.0);
  if (j.contains("data_position") && j["data_position"].is_object()) {
    st.epoch = j["data_position"].value("epoch", int64_t(0));
    st.rows_into_epoch = j["data_position"].value("rows_into_epoch", int64_t(0));
    st.rows_per_epoch = j["data_position"].value("rows_per_epoch", int64_t(0));
    st.global_batch_rows = j["data_position"].value("global_batch_rows", int64_t(0));
    st.world_size = j["data_position"].value("world_size", int64_t(1));
  }
  if (j.contains("rng") && j["rng"].is_object()) st.seed = j["rng"].value("seed", uint64_t(0));
  if (j.contains("config")) st.config = j["config"];
  if (lora) {
    LoraAdapter loaded = load_peft_adapter(dir, model.config());
    for (size_t l = 0; l < lora->layers.size(); ++l)
      for (int p = 0; p < kNumProj; ++p) {
        const LoraModule& dst = lora->layers[l][size_t(p)];
        const LoraModule& src = loaded.layers[l][size_t(p)];
        BRISK_CHECK(dst.defined() == src.defined(), dir, ": checkpoint targets other LoRA modules than this config");
        if (!dst.defined()) continue;
        BRISK_CHECK(dst.A.shape == src.A.shape, dir, ": checkpoint has LoRA rank ", src.A.dim(0), ", config ", dst.A.dim(0));
        std::copy(src.A.f32(), src.A.f32() + src.A.numel(), dst.A.f32());
        std::copy(src.B.f32(), src.B.f32() + src.B.numel(), dst.B.f32());
      }
  } else {
    io::SafeTensorsFile f = io::SafeTensorsFile::open(path_join(dir, "model.safetensors"));
    for (TrainGrad& p : params) {
      BRISK_CHECK(f.has(p.name), dir, ": checkpoint lacks tensor ", p.name);
      BRISK_CHECK(Shape::of(f.info(p.name).shape) == p.value.shape, dir, ": tensor ", p.name, " has another shape");
      f.read_f32(p.name, p.value.f32());
    }
  }
  io::SafeTensorsFile o = io::SafeTensorsFile::open(path_join(dir, "optimizer.safetensors"));
  for (auto& [name, t] : opt.state_tensors()) {
    BRISK_CHECK(o.has(name), dir, ": optimizer state lacks ", name);
    BRISK_CHECK(Shape::of(o.info(name).shape) == t.shape, dir, ": optimizer state ", name, " has another shape");
    o.read_f32(name, t.f32());
  }
  opt.set_steps(j.value("optimizer_steps", st.step));
  (void)model;
  return st;
}

}  // namespace brisk::train
