// Every compute op the engine uses, declared once. The CPU implementations (backend/cpu/) are
// the reference: plain, fp32 accumulation, obviously correct, multithreaded where cheap.
// The CUDA implementations (backend/cuda/) must match them on random inputs (tests/ops).
//
// Conventions: tensors are row-major and contiguous unless a comment says otherwise; `out`
// tensors are preallocated by the caller (planned memory) and never alias inputs unless the op
// says "in place". Shapes are checked with BRISK_ASSERT (a caller bug, not user input).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace brisk::ops {

// out[i, :] = table[ids[i], :]. table [V, H] (F32, BF16, F16 or block-quantized), out [n, H] F32.
// ids must be < V (checked: throws brisk::Error naming the bad id).
void embedding(const Tensor& table, const int32_t* ids, int64_t n, Tensor out);

// out = x / sqrt(mean(x^2) + eps) * (w + offset). x, out [n, H] F32 (may alias: in place ok);
// w [H] F32. offset is 0 for Llama/Qwen, 1 for Gemma's (1 + w) norms.
void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor out, float offset = 0.0f);

// out = x @ w^T (+ bias). x [n, K] F32; w [N, K] F32 or block-quantized (Q8_0, Q4_0, Q4_K, Q5_K,
// Q6_K, K whole blocks); bias [N] F32 or undefined; out [n, N] F32.
// If accumulate is true, out += x @ w^T instead.
void matmul(const Tensor& x, const Tensor& w, const Tensor& bias, Tensor out, bool accumulate = false);

// Rotary embedding in place, HF "rotate_half" convention: for each head, element i pairs with
// i + rot/2 (i < rot/2, rot = 2 * n_freq <= head_dim; dims past rot are untouched).
// x [n, heads, head_dim] F32; positions[n]; inv_freq[n_freq]; angle = float(pos) * inv_freq[i]
// computed in fp32 as transformers does; cos/sin are multiplied by mscale (YaRN attention factor).
void rope(Tensor x, const int32_t* positions, const float* inv_freq, int n_freq, float mscale = 1.0f);

// Causal grouped-query attention of one sequence's new tokens against its KV cache.
// q [n, n_head, hd] F32: the n new tokens at positions pos0 .. pos0+n-1.
// k_cache, v_cache [capacity, n_kv_head, hd] F32 (rows 0 .. pos0+n-1 are valid and already hold
// the new tokens' keys/values). out [n, n_head, hd] F32.
// Query head h uses kv head h / (n_head / n_kv_head). Token at position p attends to cache
// positions max(0, p - window + 1) .. p (window <= 0 means unlimited). scale multiplies q.k.
// softcap > 0 applies softcap * tanh(s / softcap) to the scaled scores (Gemma 2).
void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, int64_t pos0, Tensor out,
               float scale, int window = 0, float softcap = 0.0f);

// out = silu(gate) * up, elementwise. gate, up, out same shape F32 (out may alias gate).
void swiglu(const Tensor& gate, const Tensor& up, Tensor out);

// out = a + b elementwise (out may alias a or b).
void add(const Tensor& a, const Tensor& b, Tensor out);

// Row-wise softmax in place over the last dimension of x [n, m] F32 (numerically stable).
void softmax_rows(Tensor x);

}  // namespace brisk::ops

// ---------------------------------------------------------------------------------------------
// Training ops: forward variants that save what backward needs, and backward passes.
// Gradient outputs named d* are overwritten unless `accumulate` is true (then +=).
// ---------------------------------------------------------------------------------------------
namespace brisk::ops {

// dx (+)= dy @ w. dy [n, N], w [N, K], dx [n, K].
void matmul_backward_x(const Tensor& dy, const Tensor& w, Tensor dx, bool accumulate = false);
// dw (+)= dy^T @ x. dy [n, N], x [n, K], dw [N, K].
void matmul_backward_w(const Tensor& dy, const Tensor& x, Tensor dw, bool accumulate = false);
// db (+)= sum over rows of dy. dy [n, N], db [N].
void bias_backward(const Tensor& dy, Tensor db, bool accumulate = false);

// Backward of rmsnorm (same x, w, eps, offset as the forward): dx (+)= d/dx, and when dw is
// defined dw (+)= d/dw (accumulated over rows). dy, x, dx [n, H]; w, dw [H].
void rmsnorm_backward(const Tensor& x, const Tensor& w, float eps, float offset, const Tensor& dy, Tensor dx,
                      Tensor dw, bool accumulate = false);

// Backward of rope (a rotation): rotates dx back in place. Same arguments as rope().
void rope_backward(Tensor dx, const int32_t* positions, const float* inv_freq, int n_freq, float mscale = 1.0f);

// Backward of out = silu(gate) * up: dgate, dup (overwritten). All [n, I].
void swiglu_backward(const Tensor& gate, const Tensor& up, const Tensor& dout, Tensor dgate, Tensor dup);

// dtable[ids[i], :] += dout[i, :]. dtable [V, H] F32 (accumulates), dout [n, H].
void embedding_backward(const int32_t* ids, int64_t n, const Tensor& dout, Tensor dtable);

// Attention over a packed batch of T tokens holding n_seg sequences: segment s is rows
// cu_seqlens[s] .. cu_seqlens[s+1]-1 (cu_seqlens[0] = 0, cu_seqlens[n_seg] = T). Causal inside
// each segment, nothing across segments; window as in attention() (relative to the position
// inside the segment). q [T, nh, hd], k, v [T, nkv, hd], out [T, nh, hd], lse [T, nh] (the
// log-sum-exp of each query's scaled scores, saved for backward).
void attention_train_forward(const Tensor& q, const Tensor& k, const Tensor& v, const int32_t* cu_seqlens, int n_seg,
                             Tensor out, Tensor lse, float scale, int window = 0);
// Gradients of the above: dq, dk, dv overwritten. dout [T, nh, hd].
void attention_train_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& dout, const int32_t* cu_seqlens, int n_seg, Tensor dq, Tensor dk, Tensor dv,
                              float scale, int window = 0);

// Softmax cross-entropy of logits [n, V] against labels[n] (-100 = ignored row). Returns the
// SUM of per-row losses (natural log) over non-ignored rows, computed in double. Writes
// dlogits [n, V] = grad_scale * (softmax(logits) - onehot(label)) on non-ignored rows and 0 on
// ignored ones (dlogits may alias logits: computed row by row in place).
double cross_entropy(const Tensor& logits, const int32_t* labels, Tensor dlogits, float grad_scale);

// out = a * s (elementwise scale; out may alias a).
void scale(const Tensor& a, float s, Tensor out);

}  // namespace brisk::ops
