#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "backend/ops.h"
#include "io/hf_config.h"
#include "model/gguf_model.h"

namespace brisk {

std::unique_ptr<Model> Model::load(const std::string& dir) {
  if (is_gguf_path(dir)) {
    io::GGUFFile f = io::GGUFFile::open(dir);
    ModelConfig cfg = config_from_gguf(f);
    ModelWeights w = weights_from_gguf(f, cfg);
    return std::make_unique<Model>(std::move(cfg), std::move(w));
  }
  ModelConfig cfg = io::load_model_config(dir);
  ModelWeights w = load_weights(dir, cfg);
  return std::make_unique<Model>(std::move(cfg), std::move(w));
}

Model::Model(ModelConfig cfg, ModelWeights weights)
    : cfg_(std::move(cfg)), w_(std::move(weights)), rope_(make_rope_table(cfg_)) {
  set_max_batch_tokens(512);
}

void Model::set_max_batch_tokens(int64_t n) { plan_activations(std::max<int64_t>(1, n), std::max<int64_t>(1, n)); }

void Model::plan_activations(int64_t T, int64_t R) {
  const ModelConfig& c = cfg_;
  const int64_t H = c.hidden_size, qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  MemoryPlan plan;
  plan.add("x", DType::F32, {T, H});
  plan.add("xn", DType::F32, {T, H});
  plan.add("q", DType::F32, {T, qd});
  plan.add("k", DType::F32, {T, kvd});
  plan.add("v", DType::F32, {T, kvd});
  plan.add("attn", DType::F32, {T, qd});
  plan.add("gate", DType::F32, {T, c.intermediate_size});
  plan.add("up", DType::F32, {T, c.intermediate_size});
  plan.add("logit rows", DType::F32, {R, H});
  plan.add("logits", DType::F32, {R, c.vocab_size});
  act_ = Arena(plan.total());
  x_ = act_.tensor(DType::F32, {T, H});
  xn_ = act_.tensor(DType::F32, {T, H});
  q_ = act_.tensor(DType::F32, {T, qd});
  k_ = act_.tensor(DType::F32, {T, kvd});
  v_ = act_.tensor(DType::F32, {T, kvd});
  attn_ = act_.tensor(DType::F32, {T, qd});
  gate_ = act_.tensor(DType::F32, {T, c.intermediate_size});
  up_ = act_.tensor(DType::F32, {T, c.intermediate_size});
  rows_ = act_.tensor(DType::F32, {R, H});
  logits_ = act_.tensor(DType::F32, {R, c.vocab_size});
  max_tokens_ = T;
  max_logit_rows_ = R;
}

void Model::apply_lora(int64_t layer, Proj p, const Tensor& x, Tensor out) {
  if (!adapter_) return;
  const LoraModule& m = adapter_->at(layer, p);
  if (!m.defined()) return;
  const int64_t T = x.dim(0), r = m.A.dim(0);
  if (lora_tmp_.t.numel() < T * r) lora_tmp_ = HostTensor(DType::F32, {T * r});
  Tensor u(lora_tmp_.t.data, DType::F32, {T, r});
  ops::matmul(x, m.A, Tensor(), u);
  const float s = adapter_->spec.scale();
  for (int64_t i = 0; i < T * r; ++i) u.f32()[i] *= s;
  ops::matmul(u, m.B, Tensor(), out, /*accumulate=*/true);
}

Tensor Model::forward(const std::vector<SeqChunk>& batch, KVCache& cache) {
  int64_t T = 0, R = 0;
  std::set<int> slots;
  for (const SeqChunk& ch : batch) {
    BRISK_ASSERT(!ch.tokens.empty(), "empty chunk");
    BRISK_ASSERT(ch.slot >= 0 && ch.slot < cache.n_slots(), "bad slot ", ch.slot);
    BRISK_ASSERT(slots.insert(ch.slot).second, "slot ", ch.slot, " twice in one batch");
    int64_t end = cache.length(ch.slot) + int64_t(ch.tokens.size());
    BRISK_CHECK(end <= cache.capacity(), "context full: ", end, " tokens exceed the context of ",
                cache.capacity(), " (raise --ctx or shorten the prompt)");
    T += int64_t(ch.tokens.size());
    R += ch.all_logits ? int64_t(ch.tokens.size()) : 1;
  }
  if (T > max_tokens_ || R > max_logit_rows_)
    plan_activations(std::max(T, max_tokens_), std::max(R, max_logit_rows_));

  std::vector<int32_t> ids, pos;
  ids.reserve(size_t(T));
  pos.reserve(size_t(T));
  for (const SeqChunk& ch : batch)
    for (size_t j = 0; j < ch.tokens.size(); ++j) {
      ids.push_back(ch.tokens[j]);
      pos.push_back(int32_t(cache.length(ch.slot) + int64_t(j)));
    }

  Tensor x = x_.rows(0, T);
  ops::embedding(w_.embed, ids.data(), T, x);
  for (int64_t l = 0; l < cfg_.num_layers; ++l) layer_forward(l, batch, pos, cache, T);

  // Final norm and LM head only on the rows whose logits are wanted.
  const int64_t H = cfg_.hidden_size;
  Tensor rows = rows_.rows(0, R);
  int64_t r = 0, t = 0;
  for (const SeqChunk& ch : batch) {
    int64_t n = int64_t(ch.tokens.size());
    int64_t first = ch.all_logits ? 0 : n - 1;
    std::memcpy(rows.f32() + r * H, x.f32() + (t + first) * H, size_t((n - first) * H) * sizeof(float));
    r += n - first;
    t += n;
  }
  ops::rmsnorm(rows, w_.final_norm, float(cfg_.rms_norm_eps), rows);
  Tensor logits = logits_.rows(0, R);
  ops::matmul(rows, w_.lm_head, Tensor(), logits);

  for (const SeqChunk& ch : batch) cache.set_length(ch.slot, cache.length(ch.slot) + int64_t(ch.tokens.size()));
  return logits;
}

void Model::layer_forward(int64_t l, const std::vector<SeqChunk>& batch, const std::vector<int32_t>& pos,
                          KVCache& cache, int64_t T) {
  const ModelConfig& c = cfg_;
  const LayerWeights& L = w_.layers[size_t(l)];
  const float eps = float(c.rms_norm_eps);
  const int64_t nh = c.num_heads, nkv = c.num_kv_heads, hd = c.head_dim;
  Tensor x = x_.rows(0, T), xn = xn_.rows(0, T);
  Tensor q = q_.rows(0, T), k = k_.rows(0, T), v = v_.rows(0, T), attn = attn_.rows(0, T);

  // Attention block.
  ops::rmsnorm(x, L.attn_norm, eps, xn);
  ops::matmul(xn, L.wq, L.bq, q);
  ops::matmul(xn, L.wk, L.bk, k);
  ops::matmul(xn, L.wv, L.bv, v);
  apply_lora(l, Proj::Q, xn, q);
  apply_lora(l, Proj::K, xn, k);
  apply_lora(l, Proj::V, xn, v);
  if (c.qk_norm) {
    Tensor qh = q.reshape({T * nh, hd}), kh = k.reshape({T * nkv, hd});
    ops::rmsnorm(qh, L.q_norm, eps, qh);
    ops::rmsnorm(kh, L.k_norm, eps, kh);
  }
  ops::rope(q.reshape({T, nh, hd}), pos.data(), rope_.inv_freq.data(), rope_.n_freq, rope_.mscale);
  ops::rope(k.reshape({T, nkv, hd}), pos.data(), rope_.inv_freq.data(), rope_.n_freq, rope_.mscale);

  const float scale = 1.0f / std::sqrt(float(hd));
  const int window = int(c.window_for_layer(l));
  int64_t t = 0;
  for (const SeqChunk& ch : batch) {
    int64_t n = int64_t(ch.tokens.size()), pos0 = cache.length(ch.slot);
    Tensor kc = cache.keys(l, ch.slot), vc = cache.values(l, ch.slot);
    std::memcpy(kc.f32() + pos0 * nkv * hd, k.f32() + t * nkv * hd, size_t(n * nkv * hd) * sizeof(float));
    std::memcpy(vc.f32() + pos0 * nkv * hd, v.f32() + t * nkv * hd, size_t(n * nkv * hd) * sizeof(float));
    ops::attention(q.rows(t, t + n).reshape({n, nh, hd}), kc, vc, pos0,
                   attn.rows(t, t + n).reshape({n, nh, hd}), scale, window);
    t += n;
  }
  ops::matmul(attn, L.wo, L.bo, x, /*accumulate=*/true);
  apply_lora(l, Proj::O, attn, x);

  // MLP block: down(silu(gate(x)) * up(x)).
  Tensor gate = gate_.rows(0, T), up = up_.rows(0, T);
  ops::rmsnorm(x, L.mlp_norm, eps, xn);
  ops::matmul(xn, L.w_gate, Tensor(), gate);
  ops::matmul(xn, L.w_up, Tensor(), up);
  apply_lora(l, Proj::Gate, xn, gate);
  apply_lora(l, Proj::Up, xn, up);
  ops::swiglu(gate, up, gate);
  ops::matmul(gate, L.w_down, Tensor(), x, /*accumulate=*/true);
  apply_lora(l, Proj::Down, gate, x);
}

}  // namespace brisk
