// AdamW + clip_grad_norm + LR schedules replayed against torch.optim.AdamW (foreach=False, CPU),
// torch.nn.utils.clip_grad_norm_ and transformers' get_*_schedule_with_warmup, as dumped by
// tests/golden/make_optimizer_reference.py. Learning rates must match exactly (same double
// arithmetic); fp32 params and moments within 1e-6 relative (torch reduces the gradient norm in
// float, we in double, so the clip coefficient may differ by an ulp); exact matches are counted.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/fs.h"
#include "train/optimizer.h"

namespace brisk::train {
namespace {

std::vector<float> floats(const nlohmann::json& bits) {
  std::vector<float> out;
  for (auto& b : bits) {
    uint32_t u = b.get<uint32_t>();
    float f;
    std::memcpy(&f, &u, 4);
    out.push_back(f);
  }
  return out;
}

nlohmann::json load_refs() {
  std::string path = testing::source_path("tests/golden/data/optimizer_refs.json");
  if (!file_exists(path)) return nullptr;
  auto j = nlohmann::json::parse(read_file(path));
  std::printf("  reference: torch %s, transformers %s\n", j["torch"].get<std::string>().c_str(),
              j["transformers"].get<std::string>().c_str());
  return j;
}

TEST(OptimizerGolden, SchedulesMatchTransformers) {
  auto j = load_refs();
  if (j.is_null()) GTEST_SKIP() << "optimizer_refs.json not generated yet (tests/golden/make_optimizer_reference.py)";
  for (auto& s : j["schedules"]) {
    const std::string name = s["schedule"];
    const int64_t warmup = s["warmup"], total = s["total"];
    const auto& lrs = s["lrs"];
    for (size_t k = 0; k < lrs.size(); ++k)
      EXPECT_EQ(lr_at(name, s["base_lr"], int64_t(k), warmup, total), lrs[k].get<double>())
          << name << " warmup " << warmup << " total " << total << " step " << k;
  }
}

TEST(OptimizerGolden, AdamWMatchesTorch) {
  auto j = load_refs();
  if (j.is_null()) GTEST_SKIP() << "optimizer_refs.json not generated yet (tests/golden/make_optimizer_reference.py)";
  for (auto& c : j["adamw"]) {
    const std::string name = c["name"];
    const size_t n = c["shapes"].size();
    std::vector<std::vector<float>> values(n), grads(n);
    std::vector<Param> params;
    for (size_t i = 0; i < n; ++i) {
      values[i] = floats(c["init"][i]);
      grads[i].resize(values[i].size());
      const int64_t len = int64_t(values[i].size());
      params.push_back({name + "." + std::to_string(i), Tensor(values[i].data(), DType::F32, Shape{len}),
                        Tensor(grads[i].data(), DType::F32, Shape{len}), c["decay"][i].get<bool>()});
    }
    AdamW opt(params);
    AdamWOptions o{.lr = 0, .beta1 = c["beta1"], .beta2 = c["beta2"], .eps = c["eps"], .weight_decay = c["weight_decay"]};
    int64_t k = 0;
    for (auto& st : c["history"]) {
      for (size_t i = 0; i < n; ++i) {  // copy into the storage the Params view
        const std::vector<float> g = floats(st["grads"][i]);
        ASSERT_EQ(g.size(), grads[i].size());
        std::copy(g.begin(), g.end(), grads[i].begin());
      }
      const double norm = clip_grad_norm(opt.params(), c["max_norm"]);
      EXPECT_NEAR(norm, st["norm"].get<double>(), 1e-6 * st["norm"].get<double>()) << name << " step " << k;
      o.lr = lr_at(c["schedule"], c["lr"], k, c["warmup"], c["steps"]);
      EXPECT_EQ(o.lr, st["lr"].get<double>()) << name << " step " << k;
      opt.step(o);
      ++k;
    }
    auto state = opt.state_tensors();
    int64_t total = 0, exact = 0;
    // Per tensor: max |got - want| / max |want| <= 1e-6 (the metric of every golden test;
    // per-element relative error is meaningless where moments cancel to near zero).
    auto compare = [&](const float* got, const std::vector<float>& want, const std::string& what) {
      double err = 0, scale = 0;
      for (size_t e = 0; e < want.size(); ++e) {
        ++total;
        exact += got[e] == want[e];
        err = std::max(err, std::fabs(double(got[e]) - want[e]));
        scale = std::max(scale, std::fabs(double(want[e])));
      }
      EXPECT_LE(err, 1e-6 * scale + 1e-30) << name << " " << what << ": max abs err " << err << ", max |ref| " << scale;
    };
    for (size_t i = 0; i < n; ++i) {
      compare(values[i].data(), floats(c["final"][i]), "param " + std::to_string(i));
      compare(state[2 * i].second.f32(), floats(c["state"][i]["exp_avg"]), "exp_avg " + std::to_string(i));
      compare(state[2 * i + 1].second.f32(), floats(c["state"][i]["exp_avg_sq"]), "exp_avg_sq " + std::to_string(i));
    }
    std::printf("  %s: %lld of %lld values bit-exact\n", name.c_str(), (long long)exact, (long long)total);
  }
}

}  // namespace
}  // namespace brisk::train
