#include "model/train_model.h"

#include <cmath>
#include <algorithm>
#include <cstring>

#include "backend/ops.h"
#include "core/rng.h"
#include "model/arch.h"

namespace brisk {

Recompute parse_recompute(const std::string& s) {
  if (s == "none") return Recompute::None;
  if (s == "selective") return Recompute::Selective;
  if (s == "full") return Recompute::Full;
  throw Error(cat("unknown recompute policy '", s, "' (expected none, selective or full)"));
}

TokenBatch random_token_batch(int64_t vocab, int64_t batch, int64_t seq, uint64_t seed) {
  Rng rng(seed);
  TokenBatch b;
  b.cu_seqlens.push_back(0);
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t i = 0; i < seq; ++i) {
      int32_t id = int32_t(rng.below(uint64_t(vocab)));
      b.ids.push_back(id);
      b.labels.push_back(id);
      b.positions.push_back(int32_t(i));
    }
    b.cu_seqlens.push_back(int32_t(b.ids.size()));
  }
  return b;
}

int64_t TokenBatch::label_count() const {
  int64_t n = 0;
  for (size_t s = 0; s + 1 < cu_seqlens.size(); ++s)
    for (int32_t i = cu_seqlens[s] + 1; i < cu_seqlens[s + 1]; ++i) n += labels[size_t(i)] != -100;
  return n;
}

namespace {

// Activations of one layer that backward reads.
struct LayerActs {
  Tensor xn, q_raw, k_raw, q, k, v, attn, lse, x_mid, xn2, gate, up, h;
  std::array<Tensor, kNumProj> u;  // LoRA x A^T (unscaled), [T, r]
};

void copy(const Tensor& src, Tensor dst) { std::memcpy(dst.data, src.data, src.nbytes()); }

// Dropout for LoRA module (layer, p): element i is kept with probability 1 - pr and scaled by
// 1/(1-pr). The mask is a pure function of (seed, layer, p, i), regenerated in backward, so
// nothing is stored and recomputation reproduces it.
class DropoutMask {
 public:
  DropoutMask(double pr, uint64_t seed, int64_t layer, Proj p)
      : rng_(seed ^ (uint64_t(layer) * 0x9e3779b97f4a7c15ull) ^ ((uint64_t(int(p)) + 1) * 0xc2b2ae3d27d4eb4full)),
        pr_(pr), keep_(float(1.0 / (1.0 - pr))) {}
  float next() { return rng_.uniform_double() < pr_ ? 0.0f : keep_; }  // call once per element, in order

 private:
  Rng rng_;
  double pr_;
  float keep_;
};

void dropout_into(const Tensor& x, Tensor out, double pr, uint64_t seed, int64_t layer, Proj p) {
  DropoutMask mask(pr, seed, layer, p);
  const float* a = x.f32();
  float* o = out.f32();
  for (int64_t i = 0; i < x.numel(); ++i) o[i] = a[i] * mask.next();
}

}  // namespace

struct TrainModel::Impl {
  Model& model;
  LoraAdapter* lora;
  Recompute recompute;
  bool full;  // full fine-tuning
  bool train_embed, train_head;
  ModelWeights grads;  // full FT: same layout as the weights
  std::vector<std::array<LoraModule, kNumProj>> lora_grads;
  Arena grad_arena;

  // Per-batch buffers (re-planned when T grows).
  int64_t cap = 0;
  Arena act_arena;
  std::vector<Tensor> x_in;      // [L+1] layer inputs; x_in[L] is the final hidden state
  std::vector<LayerActs> acts;   // [L] (None) or [1] (Full)
  Tensor xf, dres, dmid, dxn, dq, dk, dv, dq_raw, dk_raw, dattn, dgate, dup, dh, du, su, tmp_in, tmp_out, logits;
  int64_t logit_rows = 0;

  Impl(Model& m, LoraAdapter* a, Recompute rc, bool fe, bool fh)
      : model(m), lora(a), recompute(rc), full(a == nullptr), train_embed(!fe), train_head(!fh) {}

  const ModelConfig& cfg() const { return model.config(); }

  void plan(int64_t T) {
    const ModelConfig& c = cfg();
    const int64_t H = c.hidden_size, I = c.intermediate_size, qd = c.num_heads * c.head_dim,
                  kvd = c.num_kv_heads * c.head_dim, L = c.num_layers, V = c.vocab_size;
    const int64_t r = lora ? lora->spec.r : 0;
    const int64_t max_in = std::max(H, std::max(I, qd));
    const int64_t max_out = std::max(H, std::max(I, qd));
    logit_rows = std::max<int64_t>(1, std::min<int64_t>(T, 64));
    int64_t n_sets = recompute == Recompute::None ? L : 1;
    MemoryPlan p;
    for (int64_t l = 0; l <= L; ++l) p.add("x_in", DType::F32, {T, H});
    for (int64_t s = 0; s < n_sets; ++s) {
      p.add("xn", DType::F32, {T, H});
      if (c.qk_norm) {
        p.add("q_raw", DType::F32, {T, qd});
        p.add("k_raw", DType::F32, {T, kvd});
      }
      p.add("q", DType::F32, {T, qd});
      p.add("k", DType::F32, {T, kvd});
      p.add("v", DType::F32, {T, kvd});
      p.add("attn", DType::F32, {T, qd});
      p.add("lse", DType::F32, {T, c.num_heads});
      p.add("x_mid", DType::F32, {T, H});
      p.add("xn2", DType::F32, {T, H});
      p.add("gate", DType::F32, {T, I});
      p.add("up", DType::F32, {T, I});
      p.add("h", DType::F32, {T, I});
      if (lora)
        for (int j = 0; j < kNumProj; ++j)
          if (lora->spec.targets[size_t(j)]) p.add("u", DType::F32, {T, r});
    }
    for (const char* n : {"xf", "dres", "dmid", "dxn"}) p.add(n, DType::F32, {T, H});
    for (const char* n : {"dq", "dq_raw", "dattn"}) p.add(n, DType::F32, {T, qd});
    for (const char* n : {"dk", "dv", "dk_raw"}) p.add(n, DType::F32, {T, kvd});
    for (const char* n : {"dgate", "dup", "dh"}) p.add(n, DType::F32, {T, I});
    p.add("du", DType::F32, {T, std::max<int64_t>(r, 1)});
    p.add("su", DType::F32, {T, std::max<int64_t>(r, 1)});
    p.add("tmp_in", DType::F32, {T, max_in});
    p.add("tmp_out", DType::F32, {T, max_out});
    p.add("logits", DType::F32, {logit_rows, V});
    act_arena = Arena(p.total());
    x_in.clear();
    for (int64_t l = 0; l <= L; ++l) x_in.push_back(act_arena.tensor(DType::F32, {T, H}));
    acts.assign(size_t(n_sets), LayerActs{});
    for (auto& a : acts) {
      a.xn = act_arena.tensor(DType::F32, {T, H});
      if (c.qk_norm) {
        a.q_raw = act_arena.tensor(DType::F32, {T, qd});
        a.k_raw = act_arena.tensor(DType::F32, {T, kvd});
      }
      a.q = act_arena.tensor(DType::F32, {T, qd});
      a.k = act_arena.tensor(DType::F32, {T, kvd});
      if (!c.qk_norm) {
        a.q_raw = a.q;
        a.k_raw = a.k;
      }
      a.v = act_arena.tensor(DType::F32, {T, kvd});
      a.attn = act_arena.tensor(DType::F32, {T, qd});
      a.lse = act_arena.tensor(DType::F32, {T, c.num_heads});
      a.x_mid = act_arena.tensor(DType::F32, {T, H});
      a.xn2 = act_arena.tensor(DType::F32, {T, H});
      a.gate = act_arena.tensor(DType::F32, {T, I});
      a.up = act_arena.tensor(DType::F32, {T, I});
      a.h = act_arena.tensor(DType::F32, {T, I});
      if (lora)
        for (int j = 0; j < kNumProj; ++j)
          if (lora->spec.targets[size_t(j)]) a.u[size_t(j)] = act_arena.tensor(DType::F32, {T, r});
    }
    xf = act_arena.tensor(DType::F32, {T, H});
    dres = act_arena.tensor(DType::F32, {T, H});
    dmid = act_arena.tensor(DType::F32, {T, H});
    dxn = act_arena.tensor(DType::F32, {T, H});
    dq = act_arena.tensor(DType::F32, {T, qd});
    dq_raw = act_arena.tensor(DType::F32, {T, qd});
    dattn = act_arena.tensor(DType::F32, {T, qd});
    dk = act_arena.tensor(DType::F32, {T, kvd});
    dv = act_arena.tensor(DType::F32, {T, kvd});
    dk_raw = act_arena.tensor(DType::F32, {T, kvd});
    dgate = act_arena.tensor(DType::F32, {T, I});
    dup = act_arena.tensor(DType::F32, {T, I});
    dh = act_arena.tensor(DType::F32, {T, I});
    du = act_arena.tensor(DType::F32, {T, std::max<int64_t>(r, 1)});
    su = act_arena.tensor(DType::F32, {T, std::max<int64_t>(r, 1)});
    tmp_in = act_arena.tensor(DType::F32, {T, max_in});
    tmp_out = act_arena.tensor(DType::F32, {T, max_out});
    logits = act_arena.tensor(DType::F32, {logit_rows, V});
    cap = T;
  }

  // Rows 0..T of a planned [cap, n] buffer as a [T, n] tensor.
  static Tensor rows(const Tensor& t, int64_t T) { return t.rows(0, T); }
  static Tensor first(const Tensor& t, int64_t T, int64_t n) { return Tensor(t.data, DType::F32, {T, n}); }

  LayerActs view(const LayerActs& a, int64_t T) const {
    LayerActs v = a;
    for (Tensor* t : {&v.xn, &v.q_raw, &v.k_raw, &v.q, &v.k, &v.v, &v.attn, &v.lse, &v.x_mid, &v.xn2, &v.gate, &v.up, &v.h})
      if (t->defined()) *t = t->rows(0, T);
    for (auto& u : v.u)
      if (u.defined()) u = u.rows(0, T);
    return v;
  }

  // y = x W^T + b (+ s * dropout(x) A^T B^T), saving u = dropout(x) A^T.
  void linear_fwd(int64_t l, Proj p, const Tensor& w, const Tensor& b, const Tensor& x, Tensor y, Tensor u,
                  bool accumulate, bool train, uint64_t seed) {
    ops::matmul(x, w, b, y, accumulate);
    if (!lora) return;
    const LoraModule& m = lora->at(l, p);
    if (!m.defined()) return;
    const int64_t T = x.dim(0);
    const double pr = train ? lora->spec.dropout : 0.0;
    const Tensor* xin = &x;
    Tensor xd;
    if (pr > 0) {
      xd = first(tmp_in, T, x.dim(1));
      dropout_into(x, xd, pr, seed, l, p);
      xin = &xd;
    }
    ops::matmul(*xin, m.A, Tensor(), u);
    Tensor s_u = first(su, T, u.dim(1));
    ops::scale(u, lora->spec.scale(), s_u);
    ops::matmul(s_u, m.B, Tensor(), y, /*accumulate=*/true);
  }

  // Backward of linear_fwd: dx (+)= dy W (+ LoRA path); weight/adapter grads accumulate.
  void linear_bwd(int64_t l, Proj p, const Tensor& w, Tensor dw, Tensor db, const Tensor& x, const Tensor& u,
                  const Tensor& dy, Tensor dx, bool accumulate_dx, uint64_t seed) {
    ops::matmul_backward_x(dy, w, dx, accumulate_dx);
    if (full) {
      if (dw.defined()) ops::matmul_backward_w(dy, x, dw, /*accumulate=*/true);
      if (db.defined()) ops::bias_backward(dy, db, /*accumulate=*/true);
      return;
    }
    const LoraModule& m = lora->at(l, p);
    if (!m.defined()) return;
    const LoraModule& g = lora_grads[size_t(l)][size_t(p)];
    const int64_t T = x.dim(0), r = m.A.dim(0);
    const float s = lora->spec.scale();
    Tensor s_u = first(su, T, r), d_u = first(du, T, r);
    ops::scale(u, s, s_u);
    ops::matmul_backward_w(dy, s_u, g.B, /*accumulate=*/true);  // dB += dy^T (s u)
    ops::matmul_backward_x(dy, m.B, d_u);                       // du = dy B
    ops::scale(d_u, s, d_u);                                    //    * s
    const double pr = lora->spec.dropout;
    if (pr > 0) {
      Tensor xd = first(tmp_in, T, x.dim(1));
      dropout_into(x, xd, pr, seed, l, p);
      ops::matmul_backward_w(d_u, xd, g.A, /*accumulate=*/true);  // dA += du^T dropout(x)
      // dx += dropout'(du A): the same mask and scale applied to du A.
      Tensor t = first(tmp_out, T, x.dim(1));
      ops::matmul_backward_x(d_u, m.A, t);
      DropoutMask mask(pr, seed, l, p);
      float* o = dx.f32();
      for (int64_t i = 0; i < t.numel(); ++i) o[i] += t.f32()[i] * mask.next();
    } else {
      ops::matmul_backward_w(d_u, x, g.A, /*accumulate=*/true);  // dA += du^T x
      ops::matmul_backward_x(d_u, m.A, dx, /*accumulate=*/true);  // dx += du A
    }
  }

  void layer_forward(int64_t l, const LayerActs& a, const TokenBatch& b, bool train, uint64_t seed) {
    const ModelConfig& c = cfg();
    const LayerWeights& W = model.weights().layers[size_t(l)];
    const int64_t T = b.size(), nh = c.num_heads, nkv = c.num_kv_heads, hd = c.head_dim;
    const float eps = float(c.rms_norm_eps);
    const RopeTable& rope = model.rope();
    Tensor x = x_in[size_t(l)].rows(0, T);
    ops::rmsnorm(x, W.attn_norm, eps, a.xn);
    linear_fwd(l, Proj::Q, W.wq, W.bq, a.xn, a.q_raw, a.u[size_t(Proj::Q)], false, train, seed);
    linear_fwd(l, Proj::K, W.wk, W.bk, a.xn, a.k_raw, a.u[size_t(Proj::K)], false, train, seed);
    linear_fwd(l, Proj::V, W.wv, W.bv, a.xn, a.v, a.u[size_t(Proj::V)], false, train, seed);
    if (c.qk_norm) {
      ops::rmsnorm(a.q_raw.reshape({T * nh, hd}), W.q_norm, eps, a.q.reshape({T * nh, hd}));
      ops::rmsnorm(a.k_raw.reshape({T * nkv, hd}), W.k_norm, eps, a.k.reshape({T * nkv, hd}));
    }
    ops::rope(a.q.reshape({T, nh, hd}), b.positions.data(), rope.inv_freq.data(), rope.n_freq, rope.mscale);
    ops::rope(a.k.reshape({T, nkv, hd}), b.positions.data(), rope.inv_freq.data(), rope.n_freq, rope.mscale);
    ops::attention_train_forward(a.q.reshape({T, nh, hd}), a.k.reshape({T, nkv, hd}), a.v.reshape({T, nkv, hd}),
                                 b.cu_seqlens.data(), int(b.cu_seqlens.size()) - 1, a.attn.reshape({T, nh, hd}), a.lse,
                                 1.0f / std::sqrt(float(hd)), int(c.window_for_layer(l)));
    copy(x, a.x_mid);
    linear_fwd(l, Proj::O, W.wo, W.bo, a.attn, a.x_mid, a.u[size_t(Proj::O)], true, train, seed);
    ops::rmsnorm(a.x_mid, W.mlp_norm, eps, a.xn2);
    linear_fwd(l, Proj::Gate, W.w_gate, Tensor(), a.xn2, a.gate, a.u[size_t(Proj::Gate)], false, train, seed);
    linear_fwd(l, Proj::Up, W.w_up, Tensor(), a.xn2, a.up, a.u[size_t(Proj::Up)], false, train, seed);
    ops::swiglu(a.gate, a.up, a.h);
    Tensor out = x_in[size_t(l) + 1].rows(0, T);
    copy(a.x_mid, out);
    linear_fwd(l, Proj::Down, W.w_down, Tensor(), a.h, out, a.u[size_t(Proj::Down)], true, train, seed);
  }

  // dres: gradient w.r.t. the layer output on entry, w.r.t. the layer input on exit.
  void layer_backward(int64_t l, const LayerActs& a, const TokenBatch& b, uint64_t seed) {
    const ModelConfig& c = cfg();
    const LayerWeights& W = model.weights().layers[size_t(l)];
    LayerWeights* G = full ? &grads.layers[size_t(l)] : nullptr;
    auto gw = [&](Tensor LayerWeights::*f) { return G ? G->*f : Tensor(); };
    const int64_t T = b.size(), nh = c.num_heads, nkv = c.num_kv_heads, hd = c.head_dim;
    const float eps = float(c.rms_norm_eps);
    const RopeTable& rope = model.rope();
    Tensor d = dres.rows(0, T), dm = dmid.rows(0, T), dx_n = dxn.rows(0, T);
    Tensor d_h = dh.rows(0, T), d_gate = dgate.rows(0, T), d_up = dup.rows(0, T);
    Tensor d_attn = dattn.rows(0, T), d_q = dq.rows(0, T), d_k = dk.rows(0, T), d_v = dv.rows(0, T);
    Tensor x = x_in[size_t(l)].rows(0, T);

    // MLP: out = x_mid + down(h), h = silu(gate) * up, gate/up = proj(xn2), xn2 = norm(x_mid).
    linear_bwd(l, Proj::Down, W.w_down, gw(&LayerWeights::w_down), Tensor(), a.h, a.u[size_t(Proj::Down)], d, d_h,
               false, seed);
    ops::swiglu_backward(a.gate, a.up, d_h, d_gate, d_up);
    linear_bwd(l, Proj::Gate, W.w_gate, gw(&LayerWeights::w_gate), Tensor(), a.xn2, a.u[size_t(Proj::Gate)], d_gate,
               dx_n, false, seed);
    linear_bwd(l, Proj::Up, W.w_up, gw(&LayerWeights::w_up), Tensor(), a.xn2, a.u[size_t(Proj::Up)], d_up, dx_n,
               true, seed);
    copy(d, dm);
    ops::rmsnorm_backward(a.x_mid, W.mlp_norm, eps, 0.0f, dx_n, dm, gw(&LayerWeights::mlp_norm), true);

    // Attention: x_mid = x + o(attn), attn = softmax(q k^T) v, q/k = rope(norm?(proj(xn))).
    linear_bwd(l, Proj::O, W.wo, gw(&LayerWeights::wo), gw(&LayerWeights::bo), a.attn, a.u[size_t(Proj::O)], dm,
               d_attn, false, seed);
    ops::attention_train_backward(a.q.reshape({T, nh, hd}), a.k.reshape({T, nkv, hd}), a.v.reshape({T, nkv, hd}),
                                  a.attn.reshape({T, nh, hd}), a.lse, d_attn.reshape({T, nh, hd}), b.cu_seqlens.data(),
                                  int(b.cu_seqlens.size()) - 1, d_q.reshape({T, nh, hd}), d_k.reshape({T, nkv, hd}),
                                  d_v.reshape({T, nkv, hd}), 1.0f / std::sqrt(float(hd)), int(c.window_for_layer(l)));
    ops::rope_backward(d_q.reshape({T, nh, hd}), b.positions.data(), rope.inv_freq.data(), rope.n_freq, rope.mscale);
    ops::rope_backward(d_k.reshape({T, nkv, hd}), b.positions.data(), rope.inv_freq.data(), rope.n_freq, rope.mscale);
    Tensor dq_in = d_q, dk_in = d_k;
    if (c.qk_norm) {
      dq_in = dq_raw.rows(0, T);
      dk_in = dk_raw.rows(0, T);
      // accumulate = true so norm-weight gradients add up over micro-batches; dx starts at 0.
      std::memset(dq_in.data, 0, dq_in.nbytes());
      std::memset(dk_in.data, 0, dk_in.nbytes());
      ops::rmsnorm_backward(a.q_raw.reshape({T * nh, hd}), W.q_norm, eps, 0.0f, d_q.reshape({T * nh, hd}),
                            dq_in.reshape({T * nh, hd}), gw(&LayerWeights::q_norm), true);
      ops::rmsnorm_backward(a.k_raw.reshape({T * nkv, hd}), W.k_norm, eps, 0.0f, d_k.reshape({T * nkv, hd}),
                            dk_in.reshape({T * nkv, hd}), gw(&LayerWeights::k_norm), true);
    }
    linear_bwd(l, Proj::Q, W.wq, gw(&LayerWeights::wq), gw(&LayerWeights::bq), a.xn, a.u[size_t(Proj::Q)], dq_in,
               dx_n, false, seed);
    linear_bwd(l, Proj::K, W.wk, gw(&LayerWeights::wk), gw(&LayerWeights::bk), a.xn, a.u[size_t(Proj::K)], dk_in,
               dx_n, true, seed);
    linear_bwd(l, Proj::V, W.wv, gw(&LayerWeights::wv), gw(&LayerWeights::bv), a.xn, a.u[size_t(Proj::V)], d_v,
               dx_n, true, seed);
    copy(dm, d);
    ops::rmsnorm_backward(x, W.attn_norm, eps, 0.0f, dx_n, d, gw(&LayerWeights::attn_norm), true);
  }

  // Final norm + LM head + cross-entropy in chunks of rows (never [T, V] logits at once).
  double head(const TokenBatch& b, float grad_scale, bool backward) {
    const ModelConfig& c = cfg();
    const ModelWeights& w = model.weights();
    const int64_t T = b.size(), L = c.num_layers;
    Tensor xl = x_in[size_t(L)].rows(0, T), x_f = xf.rows(0, T);
    ops::rmsnorm(xl, w.final_norm, float(c.rms_norm_eps), x_f);
    std::vector<int32_t> targets(size_t(T), -100);
    for (size_t s = 0; s + 1 < b.cu_seqlens.size(); ++s)
      for (int32_t i = b.cu_seqlens[s]; i + 1 < b.cu_seqlens[s + 1]; ++i) targets[size_t(i)] = b.labels[size_t(i) + 1];
    Tensor dx_f = dxn.rows(0, T);
    Tensor dhead = (full && train_head) ? (c.tie_word_embeddings ? grads.embed : grads.lm_head) : Tensor();
    if (c.tie_word_embeddings && full && !train_embed) dhead = Tensor();
    double loss = 0;
    for (int64_t r0 = 0; r0 < T; r0 += logit_rows) {
      int64_t n = std::min(logit_rows, T - r0);
      Tensor xc = x_f.rows(r0, r0 + n), lc = logits.rows(0, n);
      ops::matmul(xc, w.lm_head, Tensor(), lc);
      loss += ops::cross_entropy(lc, targets.data() + r0, lc, grad_scale);
      if (!backward) continue;
      ops::matmul_backward_x(lc, w.lm_head, dx_f.rows(r0, r0 + n));
      if (dhead.defined()) ops::matmul_backward_w(lc, xc, dhead, /*accumulate=*/true);
    }
    if (backward) {
      Tensor d = dres.rows(0, T);
      std::memset(d.data, 0, d.nbytes());
      ops::rmsnorm_backward(xl, w.final_norm, float(c.rms_norm_eps), 0.0f, dx_f, d,
                            full ? grads.final_norm : Tensor(), /*accumulate=*/true);
    }
    return loss;
  }

  double run(const TokenBatch& b, float grad_scale, uint64_t seed, bool backward) {
    const ModelConfig& c = cfg();
    const int64_t T = b.size(), L = c.num_layers;
    BRISK_CHECK(T > 0, "empty training batch");
    BRISK_ASSERT(b.labels.size() == b.ids.size() && b.positions.size() == b.ids.size() && b.cu_seqlens.size() >= 2 &&
                 b.cu_seqlens.back() == T);
    if (T > cap) plan(T);
    ops::embedding(model.weights().embed, b.ids.data(), T, x_in[0].rows(0, T));
    for (int64_t l = 0; l < L; ++l) {
      const LayerActs& a = recompute == Recompute::None ? acts[size_t(l)] : acts[0];
      layer_forward(l, view(a, T), b, backward, seed);
    }
    double loss = head(b, grad_scale, backward);
    if (!backward) return loss;
    for (int64_t l = L - 1; l >= 0; --l) {
      LayerActs a = view(recompute == Recompute::None ? acts[size_t(l)] : acts[0], T);
      if (recompute == Recompute::Full) layer_forward(l, a, b, true, seed);
      layer_backward(l, a, b, seed);
    }
    if (full && train_embed) ops::embedding_backward(b.ids.data(), T, dres.rows(0, T), grads.embed);
    return loss;
  }
};

std::vector<TrainGrad> full_finetune_params(const ModelConfig& c, ModelWeights& w, ModelWeights* grads,
                                            bool train_embed, bool train_head) {
  std::vector<TrainGrad> out;
  auto wspecs = weight_specs(c, w);
  std::vector<WeightSpec> gspecs;
  if (grads) gspecs = weight_specs(c, *grads);
  // Pair every weight with its gradient through the same spec list (same order, same names).
  for (size_t i = 0; i < wspecs.size(); ++i) {
    const std::string& name = wspecs[i].name;
    if (name == hf_names::embed() && !train_embed) continue;
    if (name == hf_names::lm_head() && !train_head) continue;
    bool no_decay = name.find("norm") != std::string::npos ||
                    (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0);
    out.push_back({name, *wspecs[i].slot, grads ? *gspecs[i].slot : Tensor(), !no_decay});
  }
  return out;
}

TrainModel::TrainModel(Model& model, LoraAdapter* lora, Recompute recompute, bool freeze_embeddings,
                       bool freeze_lm_head)
    : impl_(std::make_unique<Impl>(model, lora, recompute == Recompute::Selective ? Recompute::Full : recompute,
                                   freeze_embeddings, freeze_lm_head)) {
  Impl& m = *impl_;
  const ModelConfig& c = model.config();
  if (lora) {
    BRISK_CHECK(int64_t(lora->layers.size()) == c.num_layers, "adapter has ", lora->layers.size(),
                " layers, the model ", c.num_layers);
    MemoryPlan plan;
    for (auto& layer : lora->layers)
      for (auto& mod : layer)
        if (mod.defined()) {
          plan.add("dA", DType::F32, mod.A.shape);
          plan.add("dB", DType::F32, mod.B.shape);
        }
    m.grad_arena = Arena(plan.total());
    m.lora_grads.resize(lora->layers.size());
    for (size_t l = 0; l < lora->layers.size(); ++l)
      for (int p = 0; p < kNumProj; ++p) {
        const LoraModule& mod = lora->layers[l][size_t(p)];
        if (!mod.defined()) continue;
        LoraModule& g = m.lora_grads[l][size_t(p)];
        g.A = m.grad_arena.tensor(DType::F32, mod.A.shape);
        g.B = m.grad_arena.tensor(DType::F32, mod.B.shape);
        params_.push_back({LoraAdapter::peft_name(int64_t(l), Proj(p), false), mod.A, g.A, true});
        params_.push_back({LoraAdapter::peft_name(int64_t(l), Proj(p), true), mod.B, g.B, true});
      }
  } else {
    ModelWeights& w = model.weights();
    m.grads.layers.resize(w.layers.size());
    auto specs = weight_specs(c, m.grads);
    MemoryPlan plan;
    for (auto& s : specs) plan.add(s.name, DType::F32, s.shape);
    m.grad_arena = Arena(plan.total());
    for (auto& s : specs) *s.slot = m.grad_arena.tensor(DType::F32, s.shape);
    if (c.tie_word_embeddings) m.grads.lm_head = m.grads.embed;
    params_ = full_finetune_params(c, w, &m.grads, m.train_embed, m.train_head);
  }
  zero_grad();
}

TrainModel::~TrainModel() = default;

void TrainModel::zero_grad() {
  for (auto& p : params_) std::memset(p.grad.data, 0, p.grad.nbytes());
  if (impl_->full)  // frozen embeddings/head still receive scratch gradients in some paths
    for (Tensor* t : {&impl_->grads.embed, &impl_->grads.lm_head})
      if (t->defined()) std::memset(t->data, 0, t->nbytes());
}

double TrainModel::forward_backward(const TokenBatch& batch, float grad_scale, uint64_t dropout_seed) {
  return impl_->run(batch, grad_scale, dropout_seed, true);
}

double TrainModel::loss_only(const TokenBatch& batch) { return impl_->run(batch, 1.0f, 0, false); }

}  // namespace brisk
