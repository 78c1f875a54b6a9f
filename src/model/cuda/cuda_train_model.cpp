#include "model/cuda/cuda_train_model.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/adamw.h"
#include "backend/cuda/cross_entropy.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/elementwise.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/flash_attn.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/rmsnorm.h"
#include "backend/cuda/rope.h"
#include "backend/cuda/swiglu.h"
#include "core/dtype.h"
#include "core/error.h"
#include "model/cuda/cuda_train_params.h"
#include "model/rope.h"
#include "train/optimizer.h"

namespace brisk::cuda {
namespace {

using bf16 = __nv_bfloat16;

bf16* B(const Tensor& t) { return static_cast<bf16*>(t.data); }
float* F(const Tensor& t) { return static_cast<float*>(t.data); }
int32_t* I(const Tensor& t) { return static_cast<int32_t*>(t.data); }

struct DevLayer {
  float *attn_norm = nullptr, *mlp_norm = nullptr, *q_norm = nullptr, *k_norm = nullptr;
  bf16 *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr,
       *bo = nullptr, *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
};

// One LoRA module on the device: f32 master, gradient and moments share offsets in four
// arenas of identical layout; bf16 copies feed the GEMMs.
struct DevLora {
  bool on = false;
  int64_t in = 0, out = 0;
  size_t a_off = 0, b_off = 0;  // element offsets into the f32 arenas
  bf16 *a16 = nullptr, *b16 = nullptr;
};

// The LayerWeights fields holding projection p's weight and its bias (nullptr: the MLP has none).
Tensor LayerWeights::*proj_weight(Proj p) {
  switch (p) {
    case Proj::Q: return &LayerWeights::wq;
    case Proj::K: return &LayerWeights::wk;
    case Proj::V: return &LayerWeights::wv;
    case Proj::O: return &LayerWeights::wo;
    case Proj::Gate: return &LayerWeights::w_gate;
    case Proj::Up: return &LayerWeights::w_up;
    case Proj::Down: return &LayerWeights::w_down;
  }
  BRISK_ASSERT(false, "unknown projection");
  return nullptr;
}
Tensor LayerWeights::*proj_bias(Proj p) {
  switch (p) {
    case Proj::Q: return &LayerWeights::bq;
    case Proj::K: return &LayerWeights::bk;
    case Proj::V: return &LayerWeights::bv;
    case Proj::O: return &LayerWeights::bo;
    case Proj::Gate:
    case Proj::Up:
    case Proj::Down: return nullptr;
  }
  BRISK_ASSERT(false, "unknown projection");
  return nullptr;
}

}  // namespace

struct CudaTrainModel::Impl {
  ModelConfig cfg;
  LoraSpec spec;
  Recompute recompute;
  int64_t max_tokens;
  TrainShape shape;
  TrainMemoryPlan mem;
  cudaStream_t stream = nullptr;
  std::unique_ptr<GemmEngine> gemm;

  DeviceArena weights;
  bf16 *embed = nullptr, *lm_head = nullptr;
  float* final_norm = nullptr;
  std::vector<DevLayer> layers;
  float* inv_freq = nullptr;
  float mscale = 1.0f;
  int n_freq = 0;

  // LoRA: master (f32), grad, m, v with identical layouts; bf16 copies.
  DeviceArena lora_arena;
  float *master = nullptr, *grad = nullptr, *m = nullptr, *v = nullptr;
  bf16* copy16 = nullptr;
  int64_t n_lora = 0;  // elements of each f32 arena (incl. alignment padding, kept zero)
  std::vector<std::array<DevLora, kNumProj>> lora;
  int64_t steps = 0;
  int64_t calls = 0;  // forward_backward calls (the fault-injection test hook counts them)

  // Full fine-tuning (full == true): the working weights above as device tensors, and the f32
  // masters, gradients and moments behind them (model/cuda/cuda_train_params.h).
  bool full = false;
  ModelWeights working;
  std::unique_ptr<CudaFullParams> params;

  DeviceArena act_arena;
  GpuActivations act;

  // full: train every weight (spec is ignored) except the embeddings / LM head when frozen.
  Impl(const ModelConfig& c, const LoraSpec& s, Recompute rc, int64_t max_t, bool full_ft = false,
       bool train_embed = true, bool train_head = true)
      : cfg(c), spec(s), recompute(rc), max_tokens(max_t), full(full_ft) {
    BRISK_CHECK(max_t > 0, "training needs at least one token per micro-batch");
    BRISK_CHECK(c.head_dim == 16 || c.head_dim == 32 || c.head_dim == 64 || c.head_dim == 128,
                "CUDA training supports head_dim 16, 32, 64 and 128; this model has ", c.head_dim);
    std::string why = cuda_training_unavailable_reason();
    BRISK_CHECK(why.empty(), why);
    shape.tokens = max_t;
    shape.recompute = rc;
    shape.lora = !full;
    if (!full) {
      shape.lora_r = s.r;
      shape.lora_targets = s.targets;
      shape.lora_dropout = s.dropout > 0;
    } else {
      shape.lora_r = 0;
    }
    mem = plan_train_memory(c, shape);
    size_t free_b = 0, total_b = 0;
    BRISK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    BRISK_CHECK(mem.total() <= free_b, "training needs ", double(mem.total()) / double(1ull << 30),
                " GiB of GPU memory but ", double(free_b) / double(1ull << 30), " GiB are free:\n", mem.table(),
                "try: recompute: full (or selective), a smaller batch_size or max_seq_length, or ",
                full ? "method: lora" : "a smaller LoRA rank");
    BRISK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    gemm = std::make_unique<GemmEngine>(kGemmWorkspaceBytes);
    alloc_weights();
    if (full) {
      lora.assign(size_t(cfg.num_layers), {});  // no adapter: every LoRA branch stays off
      working = working_view();
      params = std::make_unique<CudaFullParams>(cfg, working, train_embed, train_head, stream);
    } else {
      alloc_lora();
    }
    MemoryPlan ap;
    layout_gpu_activations(cfg, shape, &ap, nullptr);
    act_arena = DeviceArena(ap.total());
    act = layout_gpu_activations(cfg, shape, nullptr, [&](size_t n) { return act_arena.alloc(n); });
    if (full) {  // the norm-weight gradients' partial sums (hidden-size rows, and q/k-norm head rows)
      const size_t scratch = act.norm_scratch.nbytes();
      BRISK_ASSERT(rmsnorm_backward_scratch_bytes(max_t, int(cfg.hidden_size)) <= scratch &&
                   rmsnorm_backward_scratch_bytes(max_t * cfg.num_heads, int(cfg.head_dim)) <= scratch);
    }
    RopeTable rope = make_rope_table(cfg, 0);
    BRISK_CHECK(rope.n_freq * 2 == cfg.head_dim, "CUDA training does not support partial rotary embeddings");
    inv_freq = static_cast<float*>(weights.alloc(sizeof(float) * size_t(rope.n_freq)));
    copy_to_device(inv_freq, rope.inv_freq.data(), sizeof(float) * size_t(rope.n_freq));
    mscale = rope.mscale;
    n_freq = rope.n_freq;
  }

  ~Impl() {
    if (stream) cudaStreamDestroy(stream);
  }

  // ---- allocation -------------------------------------------------------------------------
  void alloc_weights() {
    const int64_t H = cfg.hidden_size, V = cfg.vocab_size, L = cfg.num_layers, hd = cfg.head_dim;
    MemoryPlan p;
    auto mat = [&](int64_t r, int64_t c) { p.add("w", DType::BF16, {r, c}); };
    mat(V, H);
    if (!cfg.tie_word_embeddings) mat(V, H);
    p.add("final_norm", DType::F32, {H});
    for (int64_t l = 0; l < L; ++l) {
      for (int j = 0; j < kNumProj; ++j) mat(proj_out(cfg, Proj(j)), proj_in(cfg, Proj(j)));
      p.add("norms", DType::F32, {2 * H});
      if (cfg.qk_norm) p.add("qk_norms", DType::F32, {2 * hd});
      if (cfg.attention_bias) p.add("bias", DType::BF16, {proj_out(cfg, Proj::Q) + 2 * proj_out(cfg, Proj::K)});
      if (cfg.o_bias) p.add("bo", DType::BF16, {H});
    }
    p.add("inv_freq", DType::F32, {hd});
    weights = DeviceArena(p.total());
    auto m16 = [&](int64_t r, int64_t c) { return static_cast<bf16*>(weights.alloc(size_t(r * c) * 2)); };
    auto f32 = [&](int64_t n) { return static_cast<float*>(weights.alloc(size_t(n) * 4)); };
    embed = m16(V, H);
    lm_head = cfg.tie_word_embeddings ? embed : m16(V, H);
    final_norm = f32(H);
    layers.resize(size_t(L));
    for (auto& d : layers) {
      d.wq = m16(proj_out(cfg, Proj::Q), H);
      d.wk = m16(proj_out(cfg, Proj::K), H);
      d.wv = m16(proj_out(cfg, Proj::V), H);
      d.wo = m16(H, proj_in(cfg, Proj::O));
      d.w_gate = m16(cfg.intermediate_size, H);
      d.w_up = m16(cfg.intermediate_size, H);
      d.w_down = m16(H, cfg.intermediate_size);
      float* norms = f32(2 * H);
      d.attn_norm = norms;
      d.mlp_norm = norms + H;
      if (cfg.qk_norm) {
        float* qk = f32(2 * hd);
        d.q_norm = qk;
        d.k_norm = qk + hd;
      }
      if (cfg.attention_bias) {
        bf16* b = static_cast<bf16*>(weights.alloc(size_t(proj_out(cfg, Proj::Q) + 2 * proj_out(cfg, Proj::K)) * 2));
        d.bq = b;
        d.bk = b + proj_out(cfg, Proj::Q);
        d.bv = d.bk + proj_out(cfg, Proj::K);
      }
      if (cfg.o_bias) d.bo = static_cast<bf16*>(weights.alloc(size_t(H) * 2));
    }
  }

  // The working weights of alloc_weights as device tensors in ModelWeights fields (weight_specs
  // names and shapes), for the full fine-tuning parameter table.
  ModelWeights working_view() {
    const int64_t H = cfg.hidden_size, V = cfg.vocab_size, I_ = cfg.intermediate_size, hd = cfg.head_dim;
    const int64_t qd = proj_out(cfg, Proj::Q), kvd = proj_out(cfg, Proj::K);
    auto t16 = [](bf16* p, Shape s) { return Tensor(p, DType::BF16, s, Device::CUDA); };
    auto t32 = [](float* p, Shape s) { return Tensor(p, DType::F32, s, Device::CUDA); };
    ModelWeights w;
    w.embed = t16(embed, {V, H});
    w.lm_head = t16(lm_head, {V, H});  // == embed when tied
    w.final_norm = t32(final_norm, {H});
    w.layers.resize(layers.size());
    for (size_t l = 0; l < layers.size(); ++l) {
      const DevLayer& d = layers[l];
      LayerWeights& t = w.layers[l];
      t.attn_norm = t32(d.attn_norm, {H});
      t.mlp_norm = t32(d.mlp_norm, {H});
      t.wq = t16(d.wq, {qd, H});
      t.wk = t16(d.wk, {kvd, H});
      t.wv = t16(d.wv, {kvd, H});
      t.wo = t16(d.wo, {H, qd});
      t.w_gate = t16(d.w_gate, {I_, H});
      t.w_up = t16(d.w_up, {I_, H});
      t.w_down = t16(d.w_down, {H, I_});
      if (cfg.qk_norm) {
        t.q_norm = t32(d.q_norm, {hd});
        t.k_norm = t32(d.k_norm, {hd});
      }
      if (cfg.attention_bias) {
        t.bq = t16(d.bq, {qd});
        t.bk = t16(d.bk, {kvd});
        t.bv = t16(d.bv, {kvd});
      }
      if (cfg.o_bias) t.bo = t16(d.bo, {H});
    }
    return w;
  }

  void alloc_lora() {
    const int64_t L = cfg.num_layers;
    lora.assign(size_t(L), {});
    // f32 offsets: every tensor starts at a multiple of 64 elements (256 bytes) so the bf16
    // copies (same offsets) stay 128-byte aligned for cuBLASLt.
    size_t off = 0;
    auto place = [&](int64_t n) {
      size_t o = off;
      off += (size_t(n) + 63) / 64 * 64;
      return o;
    };
    for (int64_t l = 0; l < L; ++l)
      for (int j = 0; j < kNumProj; ++j) {
        if (!spec.targets[size_t(j)]) continue;
        DevLora& d = lora[size_t(l)][size_t(j)];
        d.on = true;
        d.in = proj_in(cfg, Proj(j));
        d.out = proj_out(cfg, Proj(j));
        d.a_off = place(int64_t(spec.r) * d.in);
        d.b_off = place(d.out * int64_t(spec.r));
      }
    n_lora = int64_t(off);
    size_t f = size_t(n_lora) * 4;
    lora_arena = DeviceArena(4 * (f + kArenaAlign) + size_t(n_lora) * 2 + kArenaAlign);
    master = static_cast<float*>(lora_arena.alloc(f));
    grad = static_cast<float*>(lora_arena.alloc(f));
    m = static_cast<float*>(lora_arena.alloc(f));
    v = static_cast<float*>(lora_arena.alloc(f));
    copy16 = static_cast<bf16*>(lora_arena.alloc(size_t(n_lora) * 2));
    for (float* p : {master, grad, m, v}) BRISK_CUDA_CHECK(cudaMemsetAsync(p, 0, f, stream));
    for (auto& layer : lora)
      for (auto& d : layer)
        if (d.on) {
          d.a16 = copy16 + d.a_off;
          d.b16 = copy16 + d.b_off;
        }
  }

  // ---- weights from the host ----------------------------------------------------------------
  static void upload_bf16(bf16* dst, const Tensor& src) {
    BRISK_ASSERT(src.defined() && src.is_contiguous());
    std::vector<uint16_t> tmp(size_t(src.numel()));
    if (src.dtype == DType::BF16) {
      std::memcpy(tmp.data(), src.data, tmp.size() * 2);
    } else {
      BRISK_CHECK(src.dtype == DType::F32, "CUDA training needs f32 or bf16 base weights (got ", dtype_name(src.dtype),
                  ")");
      const float* s = src.f32();
      for (size_t i = 0; i < tmp.size(); ++i) tmp[i] = f32_to_bf16(s[i]);
    }
    copy_to_device(dst, tmp.data(), tmp.size() * 2);
  }
  static void upload_f32(float* dst, const Tensor& src) {
    BRISK_CHECK(src.dtype == DType::F32 && src.is_contiguous(), "CUDA training needs f32 norm weights");
    copy_to_device(dst, src.data, size_t(src.numel()) * 4);
  }

  void upload_weights(const ModelWeights& w) {
    upload_bf16(embed, w.embed);
    if (!cfg.tie_word_embeddings) upload_bf16(lm_head, w.lm_head);
    upload_f32(final_norm, w.final_norm);
    for (size_t l = 0; l < layers.size(); ++l) {
      const LayerWeights& s = w.layers[l];
      DevLayer& d = layers[l];
      upload_bf16(d.wq, s.wq);
      upload_bf16(d.wk, s.wk);
      upload_bf16(d.wv, s.wv);
      upload_bf16(d.wo, s.wo);
      upload_bf16(d.w_gate, s.w_gate);
      upload_bf16(d.w_up, s.w_up);
      upload_bf16(d.w_down, s.w_down);
      upload_f32(d.attn_norm, s.attn_norm);
      upload_f32(d.mlp_norm, s.mlp_norm);
      if (cfg.qk_norm) {
        upload_f32(d.q_norm, s.q_norm);
        upload_f32(d.k_norm, s.k_norm);
      }
      if (cfg.attention_bias) {
        upload_bf16(d.bq, s.bq);
        upload_bf16(d.bk, s.bk);
        upload_bf16(d.bv, s.bv);
      }
      if (cfg.o_bias) upload_bf16(d.bo, s.bo);
    }
  }

  void random_weights(uint64_t seed) {
    const int64_t H = cfg.hidden_size;
    auto fill = [&](bf16* p, int64_t n, int64_t fan_in) {
      launch_fill_uniform_bf16(p, n, 1.0f / std::sqrt(float(fan_in)), seed++, stream);
    };
    fill(embed, cfg.vocab_size * H, H);
    if (!cfg.tie_word_embeddings) fill(lm_head, cfg.vocab_size * H, H);
    launch_fill_f32(final_norm, H, 1.0f, stream);
    for (auto& d : layers) {
      fill(d.wq, proj_out(cfg, Proj::Q) * H, H);
      fill(d.wk, proj_out(cfg, Proj::K) * H, H);
      fill(d.wv, proj_out(cfg, Proj::V) * H, H);
      fill(d.wo, H * proj_in(cfg, Proj::O), proj_in(cfg, Proj::O));
      fill(d.w_gate, cfg.intermediate_size * H, H);
      fill(d.w_up, cfg.intermediate_size * H, H);
      fill(d.w_down, H * cfg.intermediate_size, cfg.intermediate_size);
      launch_fill_f32(d.attn_norm, 2 * H, 1.0f, stream);
      if (cfg.qk_norm) launch_fill_f32(d.q_norm, 2 * cfg.head_dim, 1.0f, stream);
      if (cfg.attention_bias) fill(d.bq, proj_out(cfg, Proj::Q) + 2 * proj_out(cfg, Proj::K), H);
      if (cfg.o_bias) fill(d.bo, H, H);
    }
  }

  void refresh_copies() { launch_f32_to_bf16(master, copy16, n_lora, stream); }

  // The f32 gradient arena (LoRA or full fine-tuning), for clipping, zeroing and all-reduce.
  float* grad_arena() const { return full ? params->grad_arena() : grad; }
  int64_t grad_floats() const { return full ? int64_t(params->arena_floats()) : n_lora; }

  // ---- building blocks ----------------------------------------------------------------------
  // y [T, n] (=|+=) x [T, k] W^T (+ bias)
  // y = x W^T (+ bias) (+ residual, read from `residual` or, when accumulate, from y itself).
  void linear(const bf16* x, int64_t T, int64_t k, const bf16* W, int64_t n, const bf16* bias, bf16* y,
              bool accumulate, const bf16* residual = nullptr) {
    GemmArgs g;
    g.m = T, g.n = n, g.k = k;
    g.a = x;
    g.b = W, g.trans_b = true;
    g.c = y;
    g.c_in = residual;
    g.beta = accumulate || residual ? 1.0f : 0.0f;
    g.bias = bias;
    gemm->run(g, stream);
  }

  uint64_t dropout_seed(uint64_t seed, int64_t l, Proj p) const {
    return seed ^ (uint64_t(l) * 0x9e3779b97f4a7c15ull) ^ ((uint64_t(int(p)) + 1) * 0xc2b2ae3d27d4eb4full);
  }

  // y (+)= x W^T + b, plus s * dropout(x) A^T B^T, saving u = dropout(x) A^T.
  void linear_fwd(int64_t l, Proj p, const bf16* W, const bf16* b, const bf16* x, int64_t T, bf16* y, const Tensor& u,
                  const bf16* residual, bool train, uint64_t seed) {
    const int64_t in = proj_in(cfg, p), out = proj_out(cfg, p);
    linear(x, T, in, W, out, b, y, false, residual);
    const DevLora& d = lora[size_t(l)][size_t(p)];
    if (!d.on) return;
    const bf16* xin = x;
    if (train && spec.dropout > 0) {
      launch_dropout(x, B(act.xd), T * in, float(spec.dropout), dropout_seed(seed, l, p), stream);
      xin = B(act.xd);
    }
    linear(xin, T, in, d.a16, spec.r, nullptr, B(u), false);
    GemmArgs g;  // y += s * u B^T
    g.m = T, g.n = out, g.k = spec.r;
    g.a = B(u), g.b = d.b16, g.trans_b = true, g.c = y;
    g.alpha = spec.scale(), g.beta = 1.0f;
    gemm->run(g, stream);
  }

  // Full fine-tuning: dW [out, in] += dy^T x and db += column sums of dy, in f32 (frozen or
  // absent tensors have no gradient view and are skipped).
  void weight_grads(int64_t l, Proj p, const bf16* x, const bf16* dy, int64_t T) {
    const LayerWeights& G = params->grads().layers[size_t(l)];
    const int64_t in = proj_in(cfg, p), out = proj_out(cfg, p);
    if (const Tensor& dw = G.*proj_weight(p); dw.defined()) {
      GemmArgs g;
      g.m = out, g.n = in, g.k = T;
      g.a = dy, g.trans_a = true, g.b = x, g.c = dw.data, g.c_type = DType::F32, g.beta = 1.0f;
      gemm->run(g, stream);
    }
    if (Tensor LayerWeights::*bias = proj_bias(p))
      if (const Tensor& db = G.*bias; db.defined()) launch_column_sums_add(dy, T, out, F(db), stream);
  }

  // The f32 gradient of a norm weight of layer l (full fine-tuning), or null.
  float* norm_grad(int64_t l, Tensor LayerWeights::*field) const {
    return full ? F(params->grads().layers[size_t(l)].*field) : nullptr;
  }

  // dx (=|+=) dy W (+ LoRA path); LoRA gradients accumulate in f32.
  void linear_bwd(int64_t l, Proj p, const bf16* W, const bf16* x, const Tensor& u, const bf16* dy, int64_t T,
                  bf16* dx, bool accumulate_dx, uint64_t seed) {
    const int64_t in = proj_in(cfg, p), out = proj_out(cfg, p);
    {
      GemmArgs g;  // dx = dy [T, out] W [out, in]
      g.m = T, g.n = in, g.k = out;
      g.a = dy, g.b = W, g.c = dx, g.beta = accumulate_dx ? 1.0f : 0.0f;
      gemm->run(g, stream);
    }
    if (full) weight_grads(l, p, x, dy, T);
    const DevLora& d = lora[size_t(l)][size_t(p)];
    if (!d.on) return;
    const float s = spec.scale();
    const int64_t r = spec.r;
    {
      GemmArgs g;  // dB [out, r] += s * dy^T u
      g.m = out, g.n = r, g.k = T;
      g.a = dy, g.trans_a = true, g.b = B(u), g.c = grad + d.b_off, g.c_type = DType::F32;
      g.alpha = s, g.beta = 1.0f;
      gemm->run(g, stream);
    }
    bf16* du = B(act.du);
    {
      GemmArgs g;  // du [T, r] = s * dy B
      g.m = T, g.n = r, g.k = out;
      g.a = dy, g.b = d.b16, g.c = du, g.alpha = s;
      gemm->run(g, stream);
    }
    const bool drop = spec.dropout > 0;
    const bf16* xa = x;
    if (drop) {
      launch_dropout(x, B(act.xd), T * in, float(spec.dropout), dropout_seed(seed, l, p), stream);
      xa = B(act.xd);
    }
    {
      GemmArgs g;  // dA [r, in] += du^T dropout(x)
      g.m = r, g.n = in, g.k = T;
      g.a = du, g.trans_a = true, g.b = xa, g.c = grad + d.a_off, g.c_type = DType::F32, g.beta = 1.0f;
      gemm->run(g, stream);
    }
    GemmArgs g;  // dx += du A (through the dropout mask)
    g.m = T, g.n = in, g.k = r;
    g.a = du, g.b = d.a16;
    if (drop) {
      g.c = B(act.tmp);
      gemm->run(g, stream);
      launch_add_dropout(dx, B(act.tmp), T * in, float(spec.dropout), dropout_seed(seed, l, p), stream);
    } else {
      g.c = dx, g.beta = 1.0f;
      gemm->run(g, stream);
    }
  }

  FlashAttnShape attn_shape(int64_t T, int n_seg, int max_len, int64_t l) const {
    FlashAttnShape s{};
    s.tokens = T;
    s.n_seg = n_seg;
    s.max_seqlen = max_len;
    s.n_heads = int(cfg.num_heads);
    s.n_kv_heads = int(cfg.num_kv_heads);
    s.head_dim = int(cfg.head_dim);
    s.scale = 1.0f / std::sqrt(float(cfg.head_dim));
    s.window = int(cfg.window_for_layer(l));
    return s;
  }

  // ---- one layer ---------------------------------------------------------------------------
  struct BatchInfo {
    int64_t T;
    int n_seg, max_len;
  };

  void layer_forward(int64_t l, const GpuLayerActs& a, const bf16* x, bf16* out, const BatchInfo& bi, bool train,
                     uint64_t seed, bool run_attention) {
    const DevLayer& W = layers[size_t(l)];
    const int64_t T = bi.T, H = cfg.hidden_size, nh = cfg.num_heads, nkv = cfg.num_kv_heads, hd = cfg.head_dim;
    const float eps = float(cfg.rms_norm_eps);
    launch_rmsnorm(x, W.attn_norm, B(a.xn), T, int(H), eps, 0.0f, stream);
    linear_fwd(l, Proj::Q, W.wq, W.bq, B(a.xn), T, B(a.q_raw), a.u[0], nullptr, train, seed);
    linear_fwd(l, Proj::K, W.wk, W.bk, B(a.xn), T, B(a.k_raw), a.u[1], nullptr, train, seed);
    linear_fwd(l, Proj::V, W.wv, W.bv, B(a.xn), T, B(a.v), a.u[2], nullptr, train, seed);
    if (cfg.qk_norm) {
      launch_rmsnorm(B(a.q_raw), W.q_norm, B(a.q), T * nh, int(hd), eps, 0.0f, stream);
      launch_rmsnorm(B(a.k_raw), W.k_norm, B(a.k), T * nkv, int(hd), eps, 0.0f, stream);
    }
    launch_rope(B(a.q), I(act.positions), inv_freq, T, int(nh), int(hd), n_freq, mscale, stream);
    launch_rope(B(a.k), I(act.positions), inv_freq, T, int(nkv), int(hd), n_freq, mscale, stream);
    if (run_attention)
      launch_flash_attn_forward(B(a.q), B(a.k), B(a.v), I(act.cu_seqlens), attn_shape(T, bi.n_seg, bi.max_len, l),
                                B(a.attn), F(a.lse), stream);
    linear_fwd(l, Proj::O, W.wo, W.bo, B(a.attn), T, B(a.x_mid), a.u[3], x, train, seed);  // x_mid = x + o(attn)
    launch_rmsnorm(B(a.x_mid), W.mlp_norm, B(a.xn2), T, int(H), eps, 0.0f, stream);
    linear_fwd(l, Proj::Gate, W.w_gate, nullptr, B(a.xn2), T, B(a.gate), a.u[4], nullptr, train, seed);
    linear_fwd(l, Proj::Up, W.w_up, nullptr, B(a.xn2), T, B(a.up), a.u[5], nullptr, train, seed);
    launch_swiglu(B(a.gate), B(a.up), B(a.h), T * cfg.intermediate_size, stream);
    if (out) {
      linear_fwd(l, Proj::Down, W.w_down, nullptr, B(a.h), T, out, a.u[6], B(a.x_mid), train, seed);
    } else if (lora[size_t(l)][size_t(Proj::Down)].on) {
      // Recomputation before backward: the layer output is not needed, only the down
      // projection's LoRA input u = dropout(h) A^T.
      const DevLora& d = lora[size_t(l)][size_t(Proj::Down)];
      const bf16* xin = B(a.h);
      if (train && spec.dropout > 0) {
        launch_dropout(xin, B(act.xd), T * d.in, float(spec.dropout), dropout_seed(seed, l, Proj::Down), stream);
        xin = B(act.xd);
      }
      linear(xin, T, d.in, d.a16, spec.r, nullptr, B(a.u[6]), false);
    }
  }

  // dres: gradient w.r.t. the layer output on entry, w.r.t. its input on exit.
  void layer_backward(int64_t l, const GpuLayerActs& a, const BatchInfo& bi, uint64_t seed) {
    const DevLayer& W = layers[size_t(l)];
    const int64_t T = bi.T, H = cfg.hidden_size, I_ = cfg.intermediate_size, nh = cfg.num_heads,
                  nkv = cfg.num_kv_heads, hd = cfg.head_dim;
    const float eps = float(cfg.rms_norm_eps);
    bf16 *d = B(act.dres), *dm = B(act.dmid), *dxn = B(act.dxn);
    // MLP: h = silu(gate) * up was stored by this layer's forward (or its recomputation).
    linear_bwd(l, Proj::Down, W.w_down, B(a.h), a.u[6], d, T, B(act.dh), false, seed);
    launch_swiglu_backward(B(a.gate), B(a.up), B(act.dh), B(act.dgate), B(act.dup), T * I_, stream);
    linear_bwd(l, Proj::Gate, W.w_gate, B(a.xn2), a.u[4], B(act.dgate), T, dxn, false, seed);
    linear_bwd(l, Proj::Up, W.w_up, B(a.xn2), a.u[5], B(act.dup), T, dxn, true, seed);
    // dm = d + norm_backward(x_mid, dxn)
    launch_rmsnorm_backward(B(a.x_mid), W.mlp_norm, dxn, dm, norm_grad(l, &LayerWeights::mlp_norm), true,
                            F(act.norm_scratch), T, int(H), eps, 0.0f, stream, d);
    // Attention.
    linear_bwd(l, Proj::O, W.wo, B(a.attn), a.u[3], dm, T, B(act.dattn), false, seed);
    launch_flash_attn_backward(B(a.q), B(a.k), B(a.v), B(a.attn), F(a.lse), B(act.dattn), I(act.cu_seqlens),
                               attn_shape(T, bi.n_seg, bi.max_len, l), B(act.dq), B(act.dk), B(act.dv),
                               act.attn_scratch.data, stream);
    launch_rope_backward(B(act.dq), I(act.positions), inv_freq, T, int(nh), int(hd), n_freq, mscale, stream);
    launch_rope_backward(B(act.dk), I(act.positions), inv_freq, T, int(nkv), int(hd), n_freq, mscale, stream);
    bf16 *dq_in = B(act.dq), *dk_in = B(act.dk);
    if (cfg.qk_norm) {
      dq_in = B(act.dq_raw);
      dk_in = B(act.dk_raw);
      launch_rmsnorm_backward(B(a.q_raw), W.q_norm, B(act.dq), dq_in, norm_grad(l, &LayerWeights::q_norm), true,
                              F(act.norm_scratch), T * nh, int(hd), eps, 0.0f, stream);
      launch_rmsnorm_backward(B(a.k_raw), W.k_norm, B(act.dk), dk_in, norm_grad(l, &LayerWeights::k_norm), true,
                              F(act.norm_scratch), T * nkv, int(hd), eps, 0.0f, stream);
    }
    linear_bwd(l, Proj::Q, W.wq, B(a.xn), a.u[0], dq_in, T, dxn, false, seed);
    linear_bwd(l, Proj::K, W.wk, B(a.xn), a.u[1], dk_in, T, dxn, true, seed);
    linear_bwd(l, Proj::V, W.wv, B(a.xn), a.u[2], B(act.dv), T, dxn, true, seed);
    // d = dm + norm_backward(x, dxn)
    launch_rmsnorm_backward(B(a.x_in), W.attn_norm, dxn, d, norm_grad(l, &LayerWeights::attn_norm), true,
                            F(act.norm_scratch), T, int(H), eps, 0.0f, stream, dm);
  }

  // Final norm, LM head and cross-entropy in chunks of rows; writes dres when backward.
  void head(const BatchInfo& bi, float grad_scale, bool backward) {
    const int64_t T = bi.T, H = cfg.hidden_size, V = cfg.vocab_size;
    const float eps = float(cfg.rms_norm_eps);
    launch_rmsnorm(B(act.x_final), final_norm, B(act.xf), T, int(H), eps, 0.0f, stream);
    const int64_t chunk = act.logits.dim(0);
    // Full fine-tuning: the LM head's f32 gradient (the embedding's when tied), accumulated per
    // chunk from that chunk's dlogits, so no [T, V] buffer exists.
    float* dhead = full && backward ? F(params->grads().lm_head) : nullptr;
    for (int64_t r0 = 0; r0 < T; r0 += chunk) {
      const int64_t n = std::min(chunk, T - r0);
      bf16* logits = B(act.logits);
      linear(B(act.xf) + r0 * H, n, H, lm_head, V, nullptr, logits, false);
      launch_cross_entropy(logits, I(act.targets) + r0, F(act.row_loss) + r0, logits, n, V, grad_scale, stream);
      if (!backward) continue;
      GemmArgs g;  // dxf rows = dlogits [n, V] W_head [V, H]
      g.m = n, g.n = H, g.k = V;
      g.a = logits, g.b = lm_head, g.c = B(act.dxn) + r0 * H;
      gemm->run(g, stream);
      if (dhead) {
        GemmArgs w;  // dW_head [V, H] += dlogits^T [V, n] xf [n, H]
        w.m = V, w.n = H, w.k = n;
        w.a = logits, w.trans_a = true, w.b = B(act.xf) + r0 * H, w.c = dhead, w.c_type = DType::F32, w.beta = 1.0f;
        gemm->run(w, stream);
      }
    }
    if (backward)
      launch_rmsnorm_backward(B(act.x_final), final_norm, B(act.dxn), B(act.dres),
                              full ? F(params->grads().final_norm) : nullptr, true, F(act.norm_scratch), T, int(H),
                              eps, 0.0f, stream);
  }

  // Sum (or sum of squares) of n floats on the device: block partials, added on the host in
  // double in a fixed order (deterministic). Synchronises the stream.
  double device_sum(const float* x, int64_t n, bool squares) {
    const int blocks = launch_partial_sums(x, n, squares, F(act.partial), stream);
    std::vector<float> part(static_cast<size_t>(blocks));
    copy_to_host_async(part.data(), act.partial.data, part.size() * 4, stream);
    BRISK_CUDA_CHECK(cudaStreamSynchronize(stream));
    double s = 0;
    for (float p : part) s += p;
    return s;
  }

  double run(const TokenBatch& b, float grad_scale, uint64_t seed, bool backward) {
    const int64_t T = b.size(), L = cfg.num_layers;
    BRISK_CHECK(T > 0, "empty training batch");
    BRISK_CHECK(T <= max_tokens, "micro-batch of ", T, " tokens exceeds the ", max_tokens,
                " the GPU memory was planned for");
    BRISK_ASSERT(b.labels.size() == b.ids.size() && b.positions.size() == b.ids.size() && b.cu_seqlens.size() >= 2 &&
                 b.cu_seqlens.back() == T);
    check_token_ids(b.ids.data(), T, cfg.vocab_size);
    // Targets: the next token's label inside a segment, -100 at segment ends.
    std::vector<int32_t> targets(size_t(T), -100);
    int max_len = 0;
    for (size_t s = 0; s + 1 < b.cu_seqlens.size(); ++s) {
      max_len = std::max(max_len, b.cu_seqlens[s + 1] - b.cu_seqlens[s]);
      for (int32_t i = b.cu_seqlens[s]; i + 1 < b.cu_seqlens[s + 1]; ++i) targets[size_t(i)] = b.labels[size_t(i) + 1];
    }
    check_labels(targets.data(), T, cfg.vocab_size);
    copy_to_device_async(act.ids.data, b.ids.data(), size_t(T) * 4, stream);
    copy_to_device_async(act.targets.data, targets.data(), size_t(T) * 4, stream);
    copy_to_device_async(act.positions.data, b.positions.data(), size_t(T) * 4, stream);
    copy_to_device_async(act.cu_seqlens.data, b.cu_seqlens.data(), b.cu_seqlens.size() * 4, stream);
    BatchInfo bi{T, int(b.cu_seqlens.size()) - 1, max_len};

    const bool save_attn = recompute != Recompute::Full;
    launch_embedding(embed, I(act.ids), B(act.layers[0].x_in), T, cfg.vocab_size, int(cfg.hidden_size), stream);
    for (int64_t l = 0; l < L; ++l) {
      bf16* out = l + 1 < L ? B(act.layers[size_t(l) + 1].x_in) : B(act.x_final);
      layer_forward(l, act.layers[size_t(l)], B(act.layers[size_t(l)].x_in), out, bi, backward, seed, true);
    }
    head(bi, grad_scale, backward);
    if (backward)
      for (int64_t l = L - 1; l >= 0; --l) {
        const GpuLayerActs& a = act.layers[size_t(l)];
        if (recompute != Recompute::None)
          layer_forward(l, a, B(a.x_in), nullptr, bi, true, seed, /*run_attention=*/!save_attn);
        layer_backward(l, a, bi, seed);
      }
    // dres now holds the gradient of the embedding output: scatter it into the table's rows.
    if (backward && full && params->grads().embed.defined())
      launch_embedding_backward(I(act.ids), B(act.dres), F(params->grads().embed), T, cfg.vocab_size,
                                int(cfg.hidden_size), stream);
    // The copies above read host vectors: synchronising here (sum_row_loss) keeps them alive.
    return device_sum(F(act.row_loss), T, false);
  }
};

// ---- public API ------------------------------------------------------------------------------

std::string cuda_training_unavailable_reason() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0)
    return cat("no CUDA device (", e == cudaSuccess ? "none found" : cudaGetErrorString(e),
               "): use device: cpu");
  int dev = 0, major = 0, minor = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  if (major < 8) {
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, dev);
    return cat("GPU ", dev, " (", p.name, ") has compute capability ", major, ".", minor,
               "; brisk trains in bf16, which needs 8.0 or newer (Ampere, Ada, Hopper): use device: cpu");
  }
  return "";
}

CudaTrainModel::CudaTrainModel(const Model& model, const LoraAdapter& lora, Recompute recompute, int64_t max_tokens)
    : impl_(std::make_unique<Impl>(model.config(), lora.spec, recompute, max_tokens)) {
  impl_->upload_weights(const_cast<Model&>(model).weights());
  upload(lora, nullptr, 0);
}

CudaTrainModel::CudaTrainModel(const ModelConfig& cfg, const LoraSpec& spec, Recompute recompute,
                               int64_t max_tokens, uint64_t seed)
    : impl_(std::make_unique<Impl>(cfg, spec, recompute, max_tokens)) {
  impl_->random_weights(seed);
  LoraAdapter a = init_lora(cfg, spec, seed, /*random_b=*/true);
  upload(a, nullptr, 0);
}

CudaTrainModel::CudaTrainModel(Model& model, Recompute recompute, int64_t max_tokens, bool freeze_embeddings,
                               bool freeze_lm_head)
    : impl_(std::make_unique<Impl>(model.config(), LoraSpec{}, recompute, max_tokens, /*full_ft=*/true,
                                   !freeze_embeddings, !freeze_lm_head)) {
  upload(model, nullptr, 0);
}

CudaTrainModel::CudaTrainModel(const ModelConfig& cfg, Recompute recompute, int64_t max_tokens, uint64_t seed)
    : impl_(std::make_unique<Impl>(cfg, LoraSpec{}, recompute, max_tokens, /*full_ft=*/true)) {
  impl_->random_weights(seed);
  impl_->params->masters_from_working();
}

CudaTrainModel::~CudaTrainModel() = default;

bool CudaTrainModel::full_finetuning() const { return impl_->full; }

double CudaTrainModel::forward_backward(const TokenBatch& batch, float grad_scale, uint64_t dropout_seed) {
  // Test hook (tests/ops): BRISK_TEST_CUDA_FAULT_AT=N makes the N-th call fail with a real CUDA
  // error (a copy with an invalid direction: reported at once and not sticky, so the same
  // process can resume afterwards), to check how a run ends when the device fails mid-way.
  const char* fault_env = std::getenv("BRISK_TEST_CUDA_FAULT_AT");
  const int64_t fault_at = fault_env ? std::atoll(fault_env) : 0;
  if (fault_at > 0 && ++impl_->calls == fault_at)
    BRISK_CUDA_CHECK(cudaMemcpyAsync(impl_->act.targets.data, impl_->act.ids.data, 4, static_cast<cudaMemcpyKind>(99),
                                     impl_->stream));
  return impl_->run(batch, grad_scale, dropout_seed, true);
}

double CudaTrainModel::loss_only(const TokenBatch& batch) { return impl_->run(batch, 1.0f, 0, false); }

double CudaTrainModel::clip_grad_norm(double max_norm) {
  Impl& m = *impl_;
  const double norm = std::sqrt(m.device_sum(m.grad_arena(), m.grad_floats(), true));
  // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1.
  if (max_norm > 0 && std::isfinite(norm)) {
    double c = max_norm / (norm + 1e-6);
    if (c < 1.0) launch_scale_f32(m.grad_arena(), m.grad_floats(), float(c), m.stream);
  }
  return norm;
}

void CudaTrainModel::optimizer_step(const train::AdamWOptions& o) {
  Impl& m = *impl_;
  ++m.steps;
  AdamWHyper h;
  h.lr = o.lr, h.beta1 = o.beta1, h.beta2 = o.beta2, h.eps = o.eps, h.weight_decay = o.weight_decay;
  if (m.full) {
    m.params->step(h, m.steps);  // per tensor: norm weights and biases take no decay
  } else {
    // Padding between tensors has zero parameters and gradients: the update keeps it zero.
    launch_adamw(m.master, m.grad, m.m, m.v, m.n_lora, h, m.steps, /*decay=*/true, m.stream);
    m.refresh_copies();
  }
  zero_grad();
}

float* CudaTrainModel::grad_arena() { return impl_->grad_arena(); }
size_t CudaTrainModel::grad_arena_floats() const { return size_t(impl_->grad_floats()); }
void CudaTrainModel::synchronize() const { BRISK_CUDA_CHECK(cudaStreamSynchronize(impl_->stream)); }

void CudaTrainModel::zero_grad() {
  if (impl_->full) impl_->params->zero_grad();
  else BRISK_CUDA_CHECK(cudaMemsetAsync(impl_->grad, 0, size_t(impl_->n_lora) * 4, impl_->stream));
}

int64_t CudaTrainModel::optimizer_steps() const { return impl_->steps; }

void CudaTrainModel::download(LoraAdapter& lora, train::AdamW* opt) const {
  Impl& m = *impl_;
  BRISK_ASSERT(!m.full, "download(LoraAdapter&) on a full fine-tuning trainer");
  BRISK_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  std::vector<std::pair<std::string, Tensor>> state;
  if (opt) state = opt->state_tensors();
  size_t k = 0;
  for (size_t l = 0; l < m.lora.size(); ++l)
    for (int p = 0; p < kNumProj; ++p) {
      const DevLora& d = m.lora[l][size_t(p)];
      if (!d.on) continue;
      const LoraModule& h = lora.layers[l][size_t(p)];
      for (auto [t, off] : {std::pair{h.A, d.a_off}, std::pair{h.B, d.b_off}}) {
        copy_to_host(t.data, m.master + off, size_t(t.numel()) * 4);
        if (opt) {
          copy_to_host(state[k].second.data, m.m + off, size_t(t.numel()) * 4);
          copy_to_host(state[k + 1].second.data, m.v + off, size_t(t.numel()) * 4);
          k += 2;
        }
      }
    }
  if (opt) opt->set_steps(m.steps);
}

void CudaTrainModel::upload(const LoraAdapter& lora, train::AdamW* opt, int64_t steps) {
  Impl& m = *impl_;
  BRISK_ASSERT(!m.full, "upload(LoraAdapter&) on a full fine-tuning trainer");
  BRISK_CHECK(int64_t(lora.layers.size()) == m.cfg.num_layers && lora.spec.r == m.spec.r,
              "adapter does not match the GPU trainer's shape");
  std::vector<std::pair<std::string, Tensor>> state;
  if (opt) state = opt->state_tensors();
  size_t k = 0;
  BRISK_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  for (size_t l = 0; l < m.lora.size(); ++l)
    for (int p = 0; p < kNumProj; ++p) {
      const DevLora& d = m.lora[l][size_t(p)];
      const LoraModule& h = lora.layers[l][size_t(p)];
      BRISK_CHECK(d.on == h.defined(), "adapter targets other modules than the GPU trainer");
      if (!d.on) continue;
      for (auto [t, off] : {std::pair{h.A, d.a_off}, std::pair{h.B, d.b_off}}) {
        BRISK_ASSERT(t.dtype == DType::F32);
        copy_to_device(m.master + off, t.data, size_t(t.numel()) * 4);
        if (opt) {
          copy_to_device(m.m + off, state[k].second.data, size_t(t.numel()) * 4);
          copy_to_device(m.v + off, state[k + 1].second.data, size_t(t.numel()) * 4);
          k += 2;
        }
      }
    }
  m.steps = steps;
  m.refresh_copies();
  BRISK_CUDA_CHECK(cudaStreamSynchronize(m.stream));
}

void CudaTrainModel::download(Model& model, train::AdamW* opt) const {
  Impl& m = *impl_;
  BRISK_ASSERT(m.full, "download(Model&) on a LoRA trainer");
  m.params->download(model.weights(), opt);
  if (opt) opt->set_steps(m.steps);
}

void CudaTrainModel::upload(Model& model, train::AdamW* opt, int64_t steps) {
  Impl& m = *impl_;
  BRISK_ASSERT(m.full, "upload(Model&) on a LoRA trainer");
  BRISK_CHECK(model.config().num_layers == m.cfg.num_layers && model.config().hidden_size == m.cfg.hidden_size &&
                  model.config().vocab_size == m.cfg.vocab_size,
              "model does not match the GPU trainer's shape");
  m.params->upload(model.weights(), opt);
  m.steps = steps;
}

std::vector<float> CudaTrainModel::gradient(const std::string& hf_name) const {
  BRISK_ASSERT(impl_->full, "gradient(name) is for full fine-tuning");
  return impl_->params->gradient(hf_name);
}

void CudaTrainModel::download_grads(LoraAdapter& grads) const {
  Impl& m = *impl_;
  BRISK_ASSERT(!m.full, "download_grads(LoraAdapter&) on a full fine-tuning trainer");
  BRISK_CUDA_CHECK(cudaStreamSynchronize(m.stream));
  for (size_t l = 0; l < m.lora.size(); ++l)
    for (int p = 0; p < kNumProj; ++p) {
      const DevLora& d = m.lora[l][size_t(p)];
      if (!d.on) continue;
      const LoraModule& h = grads.layers[l][size_t(p)];
      copy_to_host(h.A.data, m.grad + d.a_off, size_t(h.A.numel()) * 4);
      copy_to_host(h.B.data, m.grad + d.b_off, size_t(h.B.numel()) * 4);
    }
}

const TrainMemoryPlan& CudaTrainModel::plan() const { return impl_->mem; }

size_t CudaTrainModel::device_used_bytes() {
  size_t free_b = 0, total_b = 0;
  BRISK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

}  // namespace brisk::cuda
