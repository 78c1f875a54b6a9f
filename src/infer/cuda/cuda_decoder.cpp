// CudaDecoder: Model::forward (model/model.cpp) on the GPU, one stream.
//
// Per forward: the batch's tokens are flattened (slot, position, wants-logits) and run in pieces
// of at most kMaxTokens tokens, so activation memory is fixed (planned at construction). Pieces
// of up to 8 tokens (decode steps, batched decode) run every projection, LoRA product and the LM
// head through the bandwidth-bound GEMV kernel (backend/cuda/gemv.h), larger ones through
// cuBLASLt. Each
// piece: embedding (f32 residual x) -> per layer rmsnorm -> q/k/v GEMMs (+bias, +LoRA) -> q/k
// norm -> rope -> append k/v to the cache -> attention over the cache -> o GEMM accumulated
// into x in f32 -> rmsnorm -> gate/up GEMMs -> swiglu -> down GEMM accumulated into x. Then the
// rows whose logits are wanted go through the final norm and the LM head kLogitRows at a time,
// and are either copied to the host (forward) or sampled on the GPU (forward_sample).
//
// The batch-1 decode step (one token, one logits row) is captured into a CUDA graph the second
// time it runs with the same cache (the first run warms up cuBLASLt's plans) and replayed after
// that: the token id, slot and position live in device buffers that are updated before each
// replay, and the attention kernel reads the position on the device.
#include "infer/cuda/cuda_decoder.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <unordered_map>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/decode_ops.h"
#include "backend/cuda/device_buffer.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/flash_attn.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/sampling.h"
#include "backend/cuda/swiglu.h"
#include "core/log.h"
#include "infer/cuda/cuda_weights.h"

namespace brisk::infer {
namespace {

constexpr int64_t kMaxTokens = 512;  // tokens per piece (activations are planned for this)
static_assert(kMaxTokens >= 3, "a decode step writes q|k|v (qd + 2 kvd <= 3 qd) into the q buffer");
constexpr int64_t kFlashMinTokens = 16;  // prefill: average tokens per sequence for the flash kernel
constexpr int64_t kLogitRows = 64;   // logits rows per LM-head GEMM (f32 [64, V] on the device)

struct Token {
  int32_t id, slot, pos;
  bool wants_logits;
};

class CudaDecoder final : public Decoder {
 public:
  explicit CudaDecoder(Model& model);
  ~CudaDecoder() override;

  const ModelConfig& config() const override { return cfg_; }
  std::string device_name() const override { return name_; }
  void reserve(int n_slots, int64_t capacity) override;
  int n_slots() const override { return n_slots_; }
  int64_t capacity() const override { return capacity_; }
  int64_t length(int slot) const override { return lengths_[size_t(slot)]; }
  void clear(int slot) override {
    BRISK_CHECK(slot >= 0 && slot < n_slots_, "slot ", slot, " out of range (", n_slots_, " slots)");
    lengths_[size_t(slot)] = 0;
  }
  Tensor forward(const std::vector<SeqChunk>& batch) override;
  void set_adapter(const LoraAdapter* adapter) override;
  std::vector<int32_t> forward_sample(const std::vector<SeqChunk>& batch, std::vector<Sampler*>& samplers,
                                      const std::vector<const std::vector<int32_t>*>& histories) override;

  CudaDecoderStats stats() const;

 private:
  std::vector<Token> flatten(const std::vector<SeqChunk>& batch) const;
  // Runs the tokens through the layers, then calls on_rows(first_row, n_rows) after each group of
  // logits rows lands in logits_ (rows in token order).
  template <typename OnRows> void run(const std::vector<Token>& toks, OnRows on_rows);
  // The segments of a piece for the prefill attention kernel (device arrays already uploaded).
  struct FlashPiece {
    int n_seg = 0, max_len = 0;
  };
  void enqueue_layers(int64_t T, const FlashPiece* flash = nullptr);
  bool has_lora(int64_t layer, Proj p) const;
  void normed_linear(const float* norm_w, const bf16* w, const bf16* bias, bf16* y, int64_t T, int64_t out,
                     bool write_xn);
  void enqueue_head(int64_t rows);
  void decode_step_graph();  // enqueue_layers(1) + enqueue_head(1), replayed from a graph when it can
  void drop_graph();
  void linear(const bf16* x, const bf16* w, const bf16* bias, void* y, bool y_f32, int64_t T, int64_t out,
              int64_t in, bool accumulate);
  void lora(int64_t layer, Proj p, const bf16* x, void* y, bool y_f32, int64_t T);
  int attention_splits(int64_t T) const;

  Model& model_;
  const ModelConfig& cfg_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  GpuWeights w_;
  std::unique_ptr<cuda::GemmEngine> gemm_;
  std::unique_ptr<GpuLora> lora_;

  // Activations for kMaxTokens tokens, planned once.
  cuda::DeviceArena act_;
  float *x_ = nullptr, *logits_ = nullptr, *attn_scratch_ = nullptr, *inv_freq_ = nullptr;
  bf16 *xn_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *attn_ = nullptr, *gate_ = nullptr,
       *up_ = nullptr, *head_rows_ = nullptr;
  int32_t *d_ids_ = nullptr, *d_slot_ = nullptr, *d_pos_ = nullptr, *d_rows_ = nullptr, *d_out_ids_ = nullptr,
          *d_pen_ids_ = nullptr, *d_pen_counts_ = nullptr;
  unsigned* attn_counters_ = nullptr;  // zeroed once; the attention kernel leaves them zero
  // Prefill pieces through the flash kernel: per segment, q rows (cu), cache row and key count.
  int32_t *d_cu_ = nullptr, *d_kv_start_ = nullptr, *d_kv_len_ = nullptr;
  float* flash_lse_ = nullptr;
  bool flash_prefill_ = false;  // head_dim one of the flash kernels' (BRISK_CUDA_FLASH_PREFILL=0: off)
  void* sample_ws_ = nullptr;
  size_t sample_ws_bytes_ = 0;
  int rope_n_freq_ = 0;
  float rope_mscale_ = 1.0f;

  // KV cache: [layer][slot][pos][kv_head][hd] bf16, keys and values.
  cuda::DeviceArena cache_;
  bf16 *k_cache_ = nullptr, *v_cache_ = nullptr;
  int n_slots_ = 0;
  int64_t capacity_ = 0;
  std::vector<int64_t> lengths_;

  HostTensor host_logits_;

  // Decode-step graph, valid for the current cache and adapter.
  cudaGraphExec_t graph_ = nullptr;
  int plain_decode_steps_ = 0;  // since the graph was last dropped
  bool graph_broken_ = false;   // capture failed once: plain launches from now on
};

CudaDecoder::CudaDecoder(Model& model) : model_(model), cfg_(model.config()) {
  const ModelConfig& c = cfg_;
  BRISK_CHECK(c.head_dim <= 256, "the CUDA decoder supports head_dim up to 256 (this model has ", c.head_dim, ")");
  BRISK_CHECK(c.hidden_act == "silu", "the CUDA decoder supports silu MLPs only (this model uses ", c.hidden_act, ")");
  BRISK_CUDA_CHECK(cudaSetDevice(0));
  cudaDeviceProp prop{};
  BRISK_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  name_ = cat("cuda:0 (", prop.name, ")");
  BRISK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  w_ = upload_weights(c, model.weights());
  gemm_ = std::make_unique<cuda::GemmEngine>();

  const int64_t T = kMaxTokens, H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  const RopeTable& rope = model.rope();
  rope_n_freq_ = rope.n_freq;
  rope_mscale_ = rope.mscale;
  cuda::AttentionDecodeShape shape{int(c.num_heads), int(c.num_kv_heads), int(c.head_dim), 1, 1.0f, 0, 0.0f};
  sample_ws_bytes_ = cuda::sample_workspace_bytes(V);
  MemoryPlan plan;
  plan.add("x (f32 residual)", DType::F32, {T, H});
  plan.add("xn", DType::BF16, {T, H});
  plan.add("q", DType::BF16, {T, qd});
  plan.add("k", DType::BF16, {T, kvd});
  plan.add("v", DType::BF16, {T, kvd});
  plan.add("attn", DType::BF16, {T, qd});
  plan.add("gate", DType::BF16, {T, I});
  plan.add("up", DType::BF16, {T, I});
  plan.add("attention scratch", cuda::attention_decode_scratch_bytes(T, shape, 1));
  plan.add("attention counters", cuda::attention_decode_counter_bytes(T, shape));
  plan.add("prefill segments", DType::I32, {3 * T + 1});
  plan.add("prefill lse", DType::F32, {T, c.num_heads});
  plan.add("head rows", DType::BF16, {kLogitRows, H});
  plan.add("logits", DType::F32, {kLogitRows, V});
  plan.add("inv_freq", DType::F32, {std::max<int64_t>(1, rope.n_freq)});
  for (const char* n : {"ids", "slots", "positions", "rows"}) plan.add(n, DType::I32, {T});
  plan.add("sampled ids", DType::I32, {kLogitRows});
  plan.add("penalty ids", DType::I32, {V});
  plan.add("penalty counts", DType::I32, {V});
  plan.add("sampling workspace", sample_ws_bytes_);
  act_ = allocate_planned(plan, "activations");
  x_ = static_cast<float*>(act_.alloc(size_t(T * H) * 4));
  xn_ = static_cast<bf16*>(act_.alloc(size_t(T * H) * 2));
  q_ = static_cast<bf16*>(act_.alloc(size_t(T * qd) * 2));
  k_ = static_cast<bf16*>(act_.alloc(size_t(T * kvd) * 2));
  v_ = static_cast<bf16*>(act_.alloc(size_t(T * kvd) * 2));
  attn_ = static_cast<bf16*>(act_.alloc(size_t(T * qd) * 2));
  gate_ = static_cast<bf16*>(act_.alloc(size_t(T * I) * 2));
  up_ = static_cast<bf16*>(act_.alloc(size_t(T * I) * 2));
  attn_scratch_ = static_cast<float*>(act_.alloc(cuda::attention_decode_scratch_bytes(T, shape, 1)));
  attn_counters_ = static_cast<unsigned*>(act_.alloc(cuda::attention_decode_counter_bytes(T, shape)));
  BRISK_CUDA_CHECK(cudaMemset(attn_counters_, 0, cuda::attention_decode_counter_bytes(T, shape)));
  d_cu_ = static_cast<int32_t*>(act_.alloc(size_t(3 * T + 1) * 4));
  d_kv_start_ = d_cu_ + T + 1;
  d_kv_len_ = d_kv_start_ + T;
  flash_lse_ = static_cast<float*>(act_.alloc(size_t(T * c.num_heads) * 4));
  const char* fp_env = std::getenv("BRISK_CUDA_FLASH_PREFILL");
  flash_prefill_ = (c.head_dim == 16 || c.head_dim == 32 || c.head_dim == 64 || c.head_dim == 128) &&
                   !(fp_env != nullptr && std::string(fp_env) == "0");
  head_rows_ = static_cast<bf16*>(act_.alloc(size_t(kLogitRows * H) * 2));
  logits_ = static_cast<float*>(act_.alloc(size_t(kLogitRows * V) * 4));
  inv_freq_ = static_cast<float*>(act_.alloc(size_t(std::max(1, rope.n_freq)) * 4));
  d_ids_ = static_cast<int32_t*>(act_.alloc(size_t(T) * 4));
  d_slot_ = static_cast<int32_t*>(act_.alloc(size_t(T) * 4));
  d_pos_ = static_cast<int32_t*>(act_.alloc(size_t(T) * 4));
  d_rows_ = static_cast<int32_t*>(act_.alloc(size_t(T) * 4));
  d_out_ids_ = static_cast<int32_t*>(act_.alloc(size_t(kLogitRows) * 4));
  d_pen_ids_ = static_cast<int32_t*>(act_.alloc(size_t(V) * 4));
  d_pen_counts_ = static_cast<int32_t*>(act_.alloc(size_t(V) * 4));
  sample_ws_ = act_.alloc(sample_ws_bytes_);
  if (rope.n_freq > 0) cuda::copy_to_device(inv_freq_, rope.inv_freq.data(), size_t(rope.n_freq) * 4);
  set_adapter(model.adapter());
}

CudaDecoder::~CudaDecoder() {
  // Destructors cannot throw: errors here only mean the context is already broken.
  if (graph_) cudaGraphExecDestroy(graph_);
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

void CudaDecoder::drop_graph() {
  if (graph_) BRISK_CUDA_CHECK(cudaGraphExecDestroy(graph_));
  graph_ = nullptr;
  plain_decode_steps_ = 0;
}

void CudaDecoder::reserve(int n_slots, int64_t capacity) {
  BRISK_CHECK(n_slots > 0 && capacity > 0, "decoder needs at least one slot and one position (got ", n_slots,
              " slots of ", capacity, ")");
  BRISK_CHECK(capacity <= INT32_MAX, "context of ", capacity, " tokens is too long");
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (n_slots == n_slots_ && capacity == capacity_) {  // same shape (a chat's next turn): keep cache and graph
    lengths_.assign(size_t(n_slots), 0);
    return;
  }
  drop_graph();
  cache_ = cuda::DeviceArena();  // free the old cache before planning the new one
  const ModelConfig& c = cfg_;
  const Shape one{c.num_layers * int64_t(n_slots), capacity, c.num_kv_heads, c.head_dim};  // [layer][slot] flattened
  MemoryPlan plan;
  plan.add("k cache", DType::BF16, one);
  plan.add("v cache", DType::BF16, one);
  cache_ = allocate_planned(plan, cat("KV cache (", n_slots, " slots x ", capacity, " tokens)").c_str());
  k_cache_ = static_cast<bf16*>(cache_.alloc(tensor_bytes(DType::BF16, one)));
  v_cache_ = static_cast<bf16*>(cache_.alloc(tensor_bytes(DType::BF16, one)));
  n_slots_ = n_slots;
  capacity_ = capacity;
  lengths_.assign(size_t(n_slots), 0);
}

void CudaDecoder::set_adapter(const LoraAdapter* adapter) {
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  drop_graph();
  lora_.reset();
  if (adapter) lora_ = std::make_unique<GpuLora>(upload_lora(cfg_, *adapter, kMaxTokens));
}

int CudaDecoder::attention_splits(int64_t T) const {
  // Enough blocks to fill the GPU on long contexts at batch 1 (flash-decoding): a split per 32
  // cache positions, so a block's warps take a few steps each (the steps are latency-bound),
  // bounded so the scratch planned for kMaxTokens x 1 split suffices. Fixed per (T, capacity):
  // graph-safe; splits past the current position are empty and cost a block's start.
  const int64_t by_len = (capacity_ + 31) / 32;
  return int(std::max<int64_t>(1, std::min<int64_t>({by_len, cuda::kMaxAttentionSplits, kMaxTokens / T})));
}

void CudaDecoder::linear(const bf16* x, const bf16* w, const bf16* bias, void* y, bool y_f32, int64_t T, int64_t out,
                         int64_t in, bool accumulate) {
  // Decode steps (a few tokens) are bound by reading W: the GEMV kernel streams it near the
  // memory bandwidth and fuses the bias. Prefill pieces stay on cuBLASLt.
  if (cuda::gemv_supported(T, in, w, x)) {
    if (y_f32) cuda::launch_gemv(w, x, static_cast<float*>(y), int(T), out, in, bias, accumulate, stream_);
    else cuda::launch_gemv(w, x, static_cast<bf16*>(y), int(T), out, in, bias, accumulate, stream_);
    return;
  }
  cuda::GemmArgs g;
  g.m = T, g.n = out, g.k = in;
  g.a = x, g.a_type = DType::BF16;
  g.b = w, g.b_type = DType::BF16, g.trans_b = true;
  g.c = y, g.c_type = y_f32 ? DType::F32 : DType::BF16;
  g.beta = accumulate ? 1.0f : 0.0f;
  gemm_->run(g, stream_);
  if (bias) {
    if (y_f32) cuda::launch_add_bias(static_cast<float*>(y), bias, T, out, stream_);
    else cuda::launch_add_bias(static_cast<bf16*>(y), bias, T, out, stream_);
  }
}

void CudaDecoder::lora(int64_t layer, Proj p, const bf16* x, void* y, bool y_f32, int64_t T) {
  if (!lora_) return;
  const GpuLoraModule& m = lora_->layers[size_t(layer)][size_t(p)];
  if (!m.A) return;
  const int64_t in = proj_in(cfg_, p), out = proj_out(cfg_, p), r = lora_->r;
  linear(x, m.A, nullptr, lora_->u, false, T, r, in, false);  // u = x A^T
  if (cuda::gemv_supported(T, r, m.B, lora_->u)) {             // y += s * u B^T
    const float s = lora_->scale;
    if (y_f32) cuda::launch_gemv(m.B, lora_->u, static_cast<float*>(y), int(T), out, r, nullptr, true, stream_, s);
    else cuda::launch_gemv(m.B, lora_->u, static_cast<bf16*>(y), int(T), out, r, nullptr, true, stream_, s);
    return;
  }
  cuda::GemmArgs g;
  g.m = T, g.n = out, g.k = r;
  g.a = lora_->u, g.b = m.B, g.trans_b = true;
  g.c = y, g.c_type = y_f32 ? DType::F32 : DType::BF16;
  g.alpha = lora_->scale, g.beta = 1.0f;
  gemm_->run(g, stream_);
}

bool CudaDecoder::has_lora(int64_t layer, Proj p) const {
  return lora_ && lora_->layers[size_t(layer)][size_t(p)].A != nullptr;
}

// A projection of the RMS-normalised residual: for one token (a decode step) the norm is computed
// inside the GEMV's staging (gemv.h), writing xn_ only when write_xn (a later GEMV or a LoRA
// module reads it); otherwise the norm kernel then the GEMV/GEMM.
void CudaDecoder::normed_linear(const float* norm_w, const bf16* w, const bf16* bias, bf16* y, int64_t T,
                                int64_t out, bool write_xn) {
  const int64_t H = cfg_.hidden_size;
  const float eps = float(cfg_.rms_norm_eps);
  if (T == 1 && cuda::gemv_fused_supported(H, w)) {
    cuda::launch_gemv_rmsnorm(w, x_, nullptr, norm_w, eps, write_xn ? xn_ : nullptr, y, false, out, H, bias, stream_);
    return;
  }
  cuda::launch_rmsnorm_f32_rows(x_, nullptr, norm_w, xn_, T, int(H), eps, stream_);
  linear(xn_, w, bias, y, false, T, out, H, false);
}

void CudaDecoder::enqueue_layers(int64_t T, const FlashPiece* flash) {
  const ModelConfig& c = cfg_;
  const int H = int(c.hidden_size), hd = int(c.head_dim), nh = int(c.num_heads), nkv = int(c.num_kv_heads);
  const int64_t I = c.intermediate_size, qd = int64_t(nh) * hd, kvd = int64_t(nkv) * hd;
  const float eps = float(c.rms_norm_eps);
  const int64_t layer_elems = int64_t(n_slots_) * capacity_ * kvd;
  const int splits = attention_splits(T);
  cuda::launch_embedding_f32(w_.embed, d_ids_, x_, T, c.vocab_size, H, stream_);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const GpuLayer& L = w_.layers[size_t(l)];
    // One token (a decode step): the stacked q|k|v rows in one GEMV, written into q_'s buffer
    // (planned for kMaxTokens rows, so it holds qd + 2 kvd), k and v pointing into it.
    bf16 *k = k_, *v = v_, *up = up_;
    const bool lora_qkv = has_lora(l, Proj::Q) || has_lora(l, Proj::K) || has_lora(l, Proj::V);
    if (T == 1 && L.qkv_stacked) {
      normed_linear(L.attn_norm, L.wq, L.bq, q_, T, qd + 2 * kvd, lora_qkv);
      k = q_ + qd;
      v = k + kvd;
    } else {
      normed_linear(L.attn_norm, L.wq, L.bq, q_, T, qd, true);
      linear(xn_, L.wk, L.bk, k, false, T, kvd, H, false);
      linear(xn_, L.wv, L.bv, v, false, T, kvd, H, false);
    }
    lora(l, Proj::Q, xn_, q_, false, T);
    lora(l, Proj::K, xn_, k, false, T);
    lora(l, Proj::V, xn_, v, false, T);
    cuda::AttentionDecodeShape s;
    s.n_head = nh, s.n_kv_head = nkv, s.head_dim = hd, s.capacity = capacity_;
    s.scale = 1.0f / std::sqrt(float(hd));
    s.window = int(c.window_for_layer(l));
    bf16* kc = k_cache_ + l * layer_elems;
    bf16* vc = v_cache_ + l * layer_elems;
    const cuda::DecodeRope rope{inv_freq_, rope_n_freq_, rope_mscale_};
    cuda::launch_rope_kv_append(q_, k, v, c.qk_norm ? L.q_norm : nullptr, c.qk_norm ? L.k_norm : nullptr, eps, rope,
                                d_slot_, d_pos_, kc, vc, T, s, stream_);
    if (flash) {  // prefill: tensor-core flash attention of each segment over its slot's cache
      cuda::FlashAttnShape f;
      f.tokens = T, f.n_seg = flash->n_seg, f.max_seqlen = flash->max_len;
      f.n_heads = nh, f.n_kv_heads = nkv, f.head_dim = hd;
      f.k_stride = f.v_stride = kvd;  // cache rows
      f.scale = s.scale, f.window = s.window;
      cuda::launch_flash_attn_prefix_forward(q_, kc, vc, d_cu_, d_kv_start_, d_kv_len_, f, attn_, flash_lse_, stream_);
    } else {
      cuda::launch_attention_decode(q_, kc, vc, d_slot_, d_pos_, attn_, attn_scratch_, attn_counters_, T, s, splits,
                                    stream_);
    }
    linear(attn_, L.wo, L.bo, x_, true, T, H, qd, true);  // x += attn Wo^T (+ bo), in f32
    lora(l, Proj::O, attn_, x_, true, T);

    const bool lora_gate_up = has_lora(l, Proj::Gate) || has_lora(l, Proj::Up);
    if (T == 1 && L.gate_up_stacked) {  // gate|up in one GEMV into gate_'s buffer
      normed_linear(L.mlp_norm, L.w_gate, nullptr, gate_, T, 2 * I, lora_gate_up);
      up = gate_ + I;
    } else {
      normed_linear(L.mlp_norm, L.w_gate, nullptr, gate_, T, I, true);
      linear(xn_, L.w_up, nullptr, up, false, T, I, H, false);
    }
    lora(l, Proj::Gate, xn_, gate_, false, T);
    lora(l, Proj::Up, xn_, up, false, T);
    if (T == 1 && cuda::gemv_fused_supported(I, L.w_down)) {
      // silu(gate) * up staged inside the down GEMV; the product is written out (to whichever of
      // the two I-sized regions gate/up do not use) only for a LoRA module on down_proj.
      bf16* act = has_lora(l, Proj::Down) ? (up == up_ ? gate_ + I : up_) : nullptr;
      cuda::launch_gemv_swiglu(L.w_down, gate_, up, act, x_, H, I, true, stream_);  // x += mlp, in f32
      lora(l, Proj::Down, act, x_, true, T);
    } else {
      cuda::launch_swiglu(gate_, up, gate_, T * I, stream_);
      linear(gate_, L.w_down, nullptr, x_, true, T, H, I, true);  // x += mlp, in f32
      lora(l, Proj::Down, gate_, x_, true, T);
    }
  }
}

void CudaDecoder::enqueue_head(int64_t rows) {
  const ModelConfig& c = cfg_;
  const float eps = float(c.rms_norm_eps);
  if (rows == 1 && cuda::gemv_fused_supported(c.hidden_size, w_.lm_head)) {  // norm fused into the GEMV
    cuda::launch_gemv_rmsnorm(w_.lm_head, x_, d_rows_, w_.final_norm, eps, nullptr, logits_, true, c.vocab_size,
                              c.hidden_size, nullptr, stream_);
    return;
  }
  cuda::launch_rmsnorm_f32_rows(x_, d_rows_, w_.final_norm, head_rows_, rows, int(c.hidden_size), eps, stream_);
  if (cuda::gemv_supported(rows, c.hidden_size, w_.lm_head, head_rows_)) {
    cuda::launch_gemv(w_.lm_head, head_rows_, logits_, int(rows), c.vocab_size, c.hidden_size, nullptr, false, stream_);
    return;
  }
  cuda::GemmArgs g;
  g.m = rows, g.n = c.vocab_size, g.k = c.hidden_size;
  g.a = head_rows_, g.b = w_.lm_head, g.trans_b = true;
  g.c = logits_, g.c_type = DType::F32;
  gemm_->run(g, stream_);
}

void CudaDecoder::decode_step_graph() {
  if (graph_) {
    BRISK_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
    return;
  }
  // The first step runs plainly (cuBLASLt chooses its algorithms outside any capture).
  if (graph_broken_ || plain_decode_steps_ == 0) {
    ++plain_decode_steps_;
    enqueue_layers(1);
    enqueue_head(1);
    return;
  }
  cudaGraph_t g = nullptr;
  std::string why;
  BRISK_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue_layers(1);
    enqueue_head(1);
  } catch (const Error& e) {
    why = e.what();
  }
  const cudaError_t end = cudaStreamEndCapture(stream_, &g);
  if (why.empty() && end != cudaSuccess) why = cat("cudaStreamEndCapture: ", cudaGetErrorString(end));
  if (why.empty()) {
    const cudaError_t inst = cudaGraphInstantiate(&graph_, g, 0);
    if (inst != cudaSuccess) {
      graph_ = nullptr;
      why = cat("cudaGraphInstantiate: ", cudaGetErrorString(inst));
    }
  }
  if (g) cudaGraphDestroy(g);
  if (!why.empty()) {
    cudaGetLastError();  // capture errors are not sticky; clear them for the checks that follow
    graph_broken_ = true;
    log_warn("CUDA graph capture of the decode step failed (", why, "); decoding with plain kernel launches");
    enqueue_layers(1);
    enqueue_head(1);
    return;
  }
  BRISK_CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
}

std::vector<Token> CudaDecoder::flatten(const std::vector<SeqChunk>& batch) const {
  BRISK_CHECK(n_slots_ > 0, "decoder has no KV cache: call reserve() first");
  std::set<int> seen;
  std::vector<Token> toks;
  for (const SeqChunk& ch : batch) {
    BRISK_CHECK(ch.slot >= 0 && ch.slot < n_slots_, "slot ", ch.slot, " out of range (", n_slots_, " slots)");
    BRISK_CHECK(seen.insert(ch.slot).second, "slot ", ch.slot, " appears twice in one batch");
    BRISK_CHECK(!ch.tokens.empty(), "empty chunk for slot ", ch.slot);
    const int64_t len = lengths_[size_t(ch.slot)], n = int64_t(ch.tokens.size());
    BRISK_CHECK(len + n <= capacity_, "sequence in slot ", ch.slot, " would reach ", len + n,
                " tokens, over the context of ", capacity_);
    cuda::check_token_ids(ch.tokens.data(), n, cfg_.vocab_size);
    for (int64_t j = 0; j < n; ++j)
      toks.push_back({ch.tokens[size_t(j)], ch.slot, int32_t(len + j), ch.all_logits || j == n - 1});
  }
  return toks;
}

template <typename OnRows> void CudaDecoder::run(const std::vector<Token>& toks, OnRows on_rows) {
  std::vector<int32_t> ids, slot, pos, rows;
  int64_t row_base = 0;
  for (size_t begin = 0; begin < toks.size(); begin += size_t(kMaxTokens)) {
    const size_t end = std::min(toks.size(), begin + size_t(kMaxTokens));
    const int64_t T = int64_t(end - begin);
    ids.clear(), slot.clear(), pos.clear(), rows.clear();
    for (size_t i = begin; i < end; ++i) {
      ids.push_back(toks[i].id);
      slot.push_back(toks[i].slot);
      pos.push_back(toks[i].pos);
      if (toks[i].wants_logits) rows.push_back(int32_t(i - begin));
    }
    cuda::copy_to_device_async(d_ids_, ids.data(), size_t(T) * 4, stream_);
    cuda::copy_to_device_async(d_slot_, slot.data(), size_t(T) * 4, stream_);
    cuda::copy_to_device_async(d_pos_, pos.data(), size_t(T) * 4, stream_);
    const bool step = T == 1 && rows.size() == 1;
    if (step) {
      cuda::copy_to_device_async(d_rows_, rows.data(), 4, stream_);
      decode_step_graph();
      on_rows(row_base, int64_t(1));
      row_base += 1;
      continue;
    }
    // Prefill pieces (on average >= kFlashMinTokens tokens per sequence) take the flash kernel:
    // each run of consecutive positions of one slot is a segment whose keys are the slot's cache
    // rows up to its last position. Few tokens per sequence (batched decoding) stay on the
    // decode kernel, which splits the context instead of tiling the queries.
    std::vector<int32_t> cu{0}, kv_start, kv_len;
    int max_len = 0;
    for (size_t i = begin; i < end; ++i) {
      const bool continues = i > begin && toks[i].slot == toks[i - 1].slot && toks[i].pos == toks[i - 1].pos + 1;
      if (!continues) {  // a new segment
        if (i > begin) cu.push_back(int32_t(i - begin));
        kv_start.push_back(int32_t(int64_t(toks[i].slot) * capacity_));
        kv_len.push_back(0);
      }
      kv_len.back() = toks[i].pos + 1;
    }
    cu.push_back(int32_t(T));
    for (size_t j = 0; j + 1 < cu.size(); ++j) max_len = std::max(max_len, cu[j + 1] - cu[j]);
    const int n_seg = int(kv_len.size());
    if (flash_prefill_ && T >= kFlashMinTokens * n_seg) {
      cuda::copy_to_device_async(d_cu_, cu.data(), cu.size() * 4, stream_);
      cuda::copy_to_device_async(d_kv_start_, kv_start.data(), size_t(n_seg) * 4, stream_);
      cuda::copy_to_device_async(d_kv_len_, kv_len.data(), size_t(n_seg) * 4, stream_);
      const FlashPiece fp{n_seg, max_len};
      enqueue_layers(T, &fp);
    } else {
      enqueue_layers(T);
    }
    for (size_t r0 = 0; r0 < rows.size(); r0 += size_t(kLogitRows)) {
      const int64_t n = int64_t(std::min(rows.size() - r0, size_t(kLogitRows)));
      // The previous group's consumer (a copy or the sampler) is ordered before this upload.
      cuda::copy_to_device_async(d_rows_, rows.data() + r0, size_t(n) * 4, stream_);
      enqueue_head(n);
      on_rows(row_base, n);
      row_base += n;
    }
  }
}

Tensor CudaDecoder::forward(const std::vector<SeqChunk>& batch) {
  std::vector<Token> toks = flatten(batch);
  int64_t R = 0;
  for (const Token& t : toks) R += t.wants_logits;
  const int64_t V = cfg_.vocab_size;
  if (host_logits_.t.numel() < R * V) host_logits_ = HostTensor(DType::F32, {R * V});
  float* host = host_logits_.f32();
  run(toks, [&](int64_t first, int64_t n) {
    cuda::copy_to_host_async(host + first * V, logits_, size_t(n * V) * 4, stream_);
  });
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (const SeqChunk& ch : batch) lengths_[size_t(ch.slot)] += int64_t(ch.tokens.size());
  return Tensor(host, DType::F32, {R, V});
}

std::vector<int32_t> CudaDecoder::forward_sample(const std::vector<SeqChunk>& batch, std::vector<Sampler*>& samplers,
                                                 const std::vector<const std::vector<int32_t>*>& histories) {
  BRISK_CHECK(samplers.size() == batch.size() && histories.size() == batch.size(), "forward_sample: ", batch.size(),
              " chunks need as many samplers and histories (got ", samplers.size(), " and ", histories.size(), ")");
  for (const SeqChunk& ch : batch)
    if (ch.all_logits) return Decoder::forward_sample(batch, samplers, histories);  // rows != chunks
  const int64_t V = cfg_.vocab_size;
  // Penalty inputs per chunk: the distinct history ids and their counts (validated here: a
  // kernel cannot throw).
  std::vector<std::vector<int32_t>> pen_ids(batch.size()), pen_counts(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const SamplingParams& p = samplers[i]->params();
    if (p.repetition_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f) continue;
    std::unordered_map<int32_t, int32_t> counts;
    for (int32_t id : *histories[i]) {
      BRISK_CHECK(id >= 0 && id < V, "token id ", id, " in the history is out of range for vocabulary size ", V);
      ++counts[id];
    }
    for (auto& [id, n] : counts) pen_ids[i].push_back(id), pen_counts[i].push_back(n);
  }
  BRISK_CHECK(int64_t(batch.size()) <= kLogitRows, "forward_sample: at most ", kLogitRows, " chunks per call (got ",
              batch.size(), ")");
  std::vector<Token> toks = flatten(batch);
  run(toks, [&](int64_t first, int64_t n) {
    for (int64_t r = 0; r < n; ++r) {
      const size_t i = size_t(first + r);  // one row per chunk, in chunk order
      float* row = logits_ + r * V;
      const SamplingParams& p = samplers[i]->params();
      if (!pen_ids[i].empty()) {
        cuda::copy_to_device_async(d_pen_ids_, pen_ids[i].data(), pen_ids[i].size() * 4, stream_);
        cuda::copy_to_device_async(d_pen_counts_, pen_counts[i].data(), pen_counts[i].size() * 4, stream_);
        cuda::launch_penalties(row, d_pen_ids_, d_pen_counts_, int(pen_ids[i].size()), p.repetition_penalty,
                               p.presence_penalty, p.frequency_penalty, stream_);
      }
      int32_t* out = d_out_ids_ + first + r;  // one row per chunk: first + r < kLogitRows
      if (p.greedy()) {
        cuda::launch_argmax(row, 1, V, out, stream_);
      } else {
        cuda::SampleCutoffs cut{p.temperature, p.top_k, p.top_p, p.min_p};
        cuda::launch_sample(row, V, cut, samplers[i]->next_uniform(), sample_ws_, sample_ws_bytes_, out, stream_);
      }
    }
  });
  std::vector<int32_t> ids(batch.size());
  cuda::copy_to_host_async(ids.data(), d_out_ids_, ids.size() * 4, stream_);
  BRISK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (const SeqChunk& ch : batch) lengths_[size_t(ch.slot)] += int64_t(ch.tokens.size());
  return ids;
}

CudaDecoderStats CudaDecoder::stats() const {
  CudaDecoderStats s;
  s.weight_bytes = w_.bytes;
  s.weight_bytes_per_token = w_.bytes_per_token;
  s.kv_cache_bytes = cache_.capacity();
  s.activation_bytes = act_.capacity();
  size_t free_b = 0, total_b = 0;
  BRISK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  s.device_used_bytes = total_b - free_b;
  s.graph_active = graph_ != nullptr;
  return s;
}

}  // namespace

bool cuda_decoder_available(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    if (why) *why = e != cudaSuccess ? cat("no CUDA device (", cudaGetErrorString(e), ")") : "no CUDA device";
    return false;
  }
  cudaDeviceProp prop{};
  BRISK_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 8) {
    if (why)
      *why = cat("GPU 0 (", prop.name, ") has compute capability ", prop.major, ".", prop.minor,
                 "; bf16 inference needs 8.0 or newer");
    return false;
  }
  if (why) why->clear();
  return true;
}

std::unique_ptr<Decoder> make_cuda_decoder(Model& model) {
  std::string why;
  BRISK_CHECK(cuda_decoder_available(&why), "--device cuda: ", why);
  return std::make_unique<CudaDecoder>(model);
}

bool cuda_decoder_stats(const Decoder& d, CudaDecoderStats* out) {
  const auto* c = dynamic_cast<const CudaDecoder*>(&d);
  if (!c) return false;
  *out = c->stats();
  return true;
}

double measure_copy_bandwidth(size_t bytes) {
  cuda::DeviceBuffer src(bytes), dst(bytes);
  BRISK_CUDA_CHECK(cudaMemset(src.data(), 1, bytes));
  cudaEvent_t a, b;
  BRISK_CUDA_CHECK(cudaEventCreate(&a));
  BRISK_CUDA_CHECK(cudaEventCreate(&b));
  float best_ms = 0.0f;
  for (int i = 0; i < 5; ++i) {  // the first run warms up; the best of the rest counts
    BRISK_CUDA_CHECK(cudaEventRecord(a, nullptr));
    BRISK_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, nullptr));
    BRISK_CUDA_CHECK(cudaEventRecord(b, nullptr));
    BRISK_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0.0f;
    BRISK_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    if (i > 0 && (best_ms == 0.0f || ms < best_ms)) best_ms = ms;
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 2.0 * double(bytes) / (double(best_ms) * 1e-3);
}

}  // namespace brisk::infer
