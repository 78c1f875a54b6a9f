#include "export/gguf_export.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "backend/quant.h"
#include "core/fs.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/thread_pool.h"
#include "model/gguf_names.h"
#include "export/merge.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "model/arch.h"
#include "model/lora.h"
#include "model/weights.h"
#include "text/gguf_vocab.h"

namespace brisk::exporter {

double QuantStats::rmse() const { return count ? std::sqrt(sq_err / double(count)) : 0.0; }
double QuantStats::relative_rmse() const { return sq_ref > 0 ? std::sqrt(sq_err / sq_ref) : 0.0; }

namespace {

using io::GGUFValue;

// The model hyperparameters under "<arch>.*", as llama.cpp's converter writes them.
void write_model_metadata(io::GGUFWriter& w, const ModelConfig& c, const std::string& name, uint32_t file_type) {
  const std::string a = gguf_arch_name(c.arch);
  w.set("general.architecture", GGUFValue::str(a));
  w.set("general.type", GGUFValue::str("model"));
  w.set("general.name", GGUFValue::str(name));
  w.set("general.file_type", GGUFValue::u32(file_type));
  w.set("general.quantization_version", GGUFValue::u32(2));
  w.set(a + ".vocab_size", GGUFValue::u32(uint32_t(c.vocab_size)));
  w.set(a + ".context_length", GGUFValue::u32(uint32_t(c.max_position_embeddings)));
  w.set(a + ".embedding_length", GGUFValue::u32(uint32_t(c.hidden_size)));
  w.set(a + ".block_count", GGUFValue::u32(uint32_t(c.num_layers)));
  w.set(a + ".feed_forward_length", GGUFValue::u32(uint32_t(c.intermediate_size)));
  w.set(a + ".attention.head_count", GGUFValue::u32(uint32_t(c.num_heads)));
  w.set(a + ".attention.head_count_kv", GGUFValue::u32(uint32_t(c.num_kv_heads)));
  w.set(a + ".attention.layer_norm_rms_epsilon", GGUFValue::f32(float(c.rms_norm_eps)));
  w.set(a + ".attention.key_length", GGUFValue::u32(uint32_t(c.head_dim)));
  w.set(a + ".attention.value_length", GGUFValue::u32(uint32_t(c.head_dim)));
  w.set(a + ".rope.freq_base", GGUFValue::f32(float(c.rope_theta)));
  w.set(a + ".rope.dimension_count", GGUFValue::u32(uint32_t(c.head_dim)));
  const RopeScaling& s = c.rope_scaling;
  switch (s.type) {
    case RopeType::Default:
    case RopeType::Llama3:  // expressed by the rope_freqs.weight tensor
      break;
    case RopeType::Linear:
      w.set(a + ".rope.scaling.type", GGUFValue::str("linear"));
      w.set(a + ".rope.scaling.factor", GGUFValue::f32(float(s.factor)));
      break;
    case RopeType::Yarn:
      w.set(a + ".rope.scaling.type", GGUFValue::str("yarn"));
      w.set(a + ".rope.scaling.factor", GGUFValue::f32(float(s.factor)));
      w.set(a + ".rope.scaling.original_context_length",
            GGUFValue::u32(uint32_t(s.original_max_position_embeddings ? s.original_max_position_embeddings
                                                                       : c.max_position_embeddings)));
      break;
    case RopeType::Dynamic:
      throw Error("dynamic (NTK) RoPE scaling has no GGUF equivalent in llama.cpp; export as is would change the model");
  }
  if (c.sliding_window > 0 && c.arch == Arch::Mistral)
    log_warn("mistral sliding_window ", c.sliding_window,
             " is not expressible for llama.cpp's llama architecture: llama.cpp attends to the full context, so outputs"
             " differ from transformers beyond ", c.sliding_window, " tokens");
  if (c.sliding_window > 0 && c.arch != Arch::Mistral)
    log_warn("sliding_window ", c.sliding_window, " is not written to GGUF (llama.cpp ", a, " has no such key)");
}

std::string model_name(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  size_t p = d.rfind('/');
  return p == std::string::npos ? d : d.substr(p + 1);
}

// Reorders rows of a [rows, cols] f32 matrix: out row r = in row perm[r].
void permute_rows(std::vector<float>& m, int64_t cols, const std::vector<int64_t>& perm) {
  std::vector<float> out(m.size());
  for (size_t r = 0; r < perm.size(); ++r)
    std::memcpy(out.data() + r * size_t(cols), m.data() + size_t(perm[r]) * size_t(cols), size_t(cols) * sizeof(float));
  m.swap(out);
}

}  // namespace

GGUFExportReport export_gguf(const GGUFExportOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  const uint32_t file_type = quant::file_type_of(opt.quant);
  if (file_exists(opt.out_path)) BRISK_CHECK(opt.force, opt.out_path, " exists (use --force to replace it)");
  ModelConfig cfg = io::load_model_config(opt.model_dir);
  io::ModelWeights base = io::ModelWeights::open(opt.model_dir);
  auto adapter = std::make_shared<LoraAdapter>();
  const bool have_adapter = !opt.adapter_dir.empty();
  if (have_adapter) *adapter = load_peft_adapter(opt.adapter_dir, cfg);
  text::GGUFVocab vocab = text::gguf_vocab_from_dir(opt.model_dir);
  BRISK_CHECK(int64_t(vocab.tokens.size()) <= cfg.vocab_size, opt.model_dir, ": tokenizer has ", vocab.tokens.size(),
              " tokens but the model's vocab_size is ", cfg.vocab_size);

  io::GGUFWriter w;
  write_model_metadata(w, cfg, model_name(opt.model_dir), file_type);
  text::write_gguf_vocab(vocab, w);

  ModelWeights slots;
  slots.layers.resize(size_t(cfg.num_layers));
  auto specs = weight_specs(cfg, slots);
  auto report = std::make_shared<GGUFExportReport>();
  const bool permute = gguf_permutes_qk(cfg.arch);
  uint64_t total_bytes = 0;

  if (cfg.rope_scaling.type == RopeType::Llama3) {
    auto factors = std::make_shared<std::vector<float>>(llama3_rope_factors(cfg));
    w.add_tensor("rope_freqs.weight", DType::F32, Shape{int64_t(factors->size())},
                 [factors](void* dst) { std::memcpy(dst, factors->data(), factors->size() * sizeof(float)); });
    total_bytes += factors->size() * sizeof(float);
  }
  for (auto& s : specs) {
    const std::string hf = s.name, gg = gguf_tensor_name(hf);
    base.get_checked(hf, s.shape);
    DType t = DType::F32;
    if (s.shape.ndim == 2) {
      std::string reason;
      t = quant::type_for_tensor(opt.quant, gg, cfg.num_layers, s.shape[1], &reason);
      if (!reason.empty()) report->fallbacks.push_back(reason);
    }
    // Which rows (if any) to permute, and which LoRA module (if any) to merge.
    int64_t perm_heads = 0;
    if (permute) {
      if (hf.find("self_attn.q_proj.") != std::string::npos) perm_heads = cfg.num_heads;
      if (hf.find("self_attn.k_proj.") != std::string::npos) perm_heads = cfg.num_kv_heads;
    }
    const LoraModule* lora = nullptr;
    if (have_adapter)
      for (int64_t l = 0; l < cfg.num_layers && !lora; ++l)
        for (int p = 0; p < kNumProj; ++p)
          if (hf == hf_names::layer(l, cat(proj_parent(Proj(p)), ".", proj_name(Proj(p)), ".weight")) &&
              adapter->at(l, Proj(p)).defined())
            lora = &adapter->at(l, Proj(p));
    total_bytes += tensor_bytes(t, s.shape);
    Shape shape = s.shape;
    const int64_t hd = cfg.head_dim;
    w.add_tensor(gg, t, shape, [&base, hf, shape, t, perm_heads, hd, lora, adapter, report](void* dst) {
      std::vector<float> v(size_t(shape.numel()));
      base.read_f32(hf, v.data());
      if (lora) merge_lora_into(v.data(), *lora, adapter->spec.scale());
      const int64_t cols = shape.ndim == 2 ? shape[1] : 1;
      if (perm_heads > 0) permute_rows(v, cols, qk_permutation(perm_heads, hd));
      if (!dtype_is_quantized(t)) {
        convert_floats(v.data(), DType::F32, dst, t, v.size());
        return;
      }
      // Quantize rows in parallel and measure the error of the dequantised weights.
      const int64_t rows = shape[0];
      const size_t rb = dtype_row_bytes(t, cols);
      std::mutex mu;
      QuantStats& st = report->per_type[dtype_name(t)];
      parallel_for(rows, 8, [&](int64_t r0, int64_t r1) {
        std::vector<float> back(static_cast<size_t>(cols));
        double sq_err = 0, sq_ref = 0;
        for (int64_t r = r0; r < r1; ++r) {
          uint8_t* q = static_cast<uint8_t*>(dst) + size_t(r) * rb;
          const float* src = v.data() + r * cols;
          quant::quantize_row(t, src, q, cols);
          quant::dequantize_row(t, q, back.data(), cols);
          for (int64_t i = 0; i < cols; ++i) {
            double e = double(back[size_t(i)]) - double(src[i]);
            sq_err += e * e;
            sq_ref += double(src[i]) * src[i];
          }
        }
        std::lock_guard<std::mutex> lock(mu);
        st.sq_err += sq_err;
        st.sq_ref += sq_ref;
      });
      st.count += rows * cols;
      st.tensors += 1;
    });
  }
  Progress prog("export gguf", specs.size(), total_bytes, opt.progress);
  w.write(opt.out_path, opt.force, [&](size_t done, size_t, uint64_t bytes) { prog.update(done, bytes); });
  prog.finish();
  report->bytes = total_bytes;
  report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return *report;
}

void export_lora_gguf(const LoraGGUFOptions& opt) {
  if (file_exists(opt.out_path)) BRISK_CHECK(opt.force, opt.out_path, " exists (use --force to replace it)");
  ModelConfig cfg = io::load_model_config(opt.base_dir);
  auto ad = std::make_shared<LoraAdapter>(load_peft_adapter(opt.adapter_dir, cfg));
  io::GGUFWriter w;
  w.set("general.architecture", GGUFValue::str(gguf_arch_name(cfg.arch)));
  w.set("general.type", GGUFValue::str("adapter"));
  w.set("general.name", GGUFValue::str(model_name(opt.adapter_dir)));
  w.set("adapter.type", GGUFValue::str("lora"));
  // llama.cpp scales by alpha / r; rsLoRA's alpha / sqrt(r) is written as alpha * sqrt(r) / r.
  const double alpha = ad->spec.rslora ? ad->spec.alpha * std::sqrt(double(ad->spec.r)) : ad->spec.alpha;
  w.set("adapter.lora.alpha", GGUFValue::f32(float(alpha)));
  const bool permute = gguf_permutes_qk(cfg.arch);
  for (int64_t l = 0; l < cfg.num_layers; ++l)
    for (int p = 0; p < kNumProj; ++p) {
      const LoraModule& m = ad->at(l, Proj(p));
      if (!m.defined()) continue;
      std::string gg = gguf_tensor_name(hf_names::layer(l, cat(proj_parent(Proj(p)), ".", proj_name(Proj(p)), ".weight")));
      int64_t heads = 0;
      if (permute && Proj(p) == Proj::Q) heads = cfg.num_heads;
      if (permute && Proj(p) == Proj::K) heads = cfg.num_kv_heads;
      Tensor A = m.A, B = m.B;
      const int64_t hd = cfg.head_dim;
      w.add_tensor(gg + ".lora_a", DType::F32, A.shape, [A, ad](void* dst) { std::memcpy(dst, A.data, A.nbytes()); });
      w.add_tensor(gg + ".lora_b", DType::F32, B.shape, [B, heads, hd, ad](void* dst) {
        std::vector<float> v(B.f32(), B.f32() + B.numel());
        if (heads > 0) permute_rows(v, B.dim(1), qk_permutation(heads, hd));  // B's rows are q/k output rows
        std::memcpy(dst, v.data(), v.size() * sizeof(float));
      });
    }
  w.write(opt.out_path, opt.force);
  log_info("wrote ", opt.out_path, ": GGUF LoRA adapter, r=", ad->spec.r, ", alpha ", alpha);
}

}  // namespace brisk::exporter
