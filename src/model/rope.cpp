// transformers computes these tables with fp32 tensor ops mixed with Python (double) scalars.
// Each fp32 op is reproduced here as "compute in double, round to float": for +, -, *, / that is
// exactly the fp32 result (double has more than 2 * 24 + 2 bits, so the double rounding is
// harmless), and, unlike plain float code, it cannot be changed by the compiler fusing a
// multiply and an add into an FMA. Python scalars meeting an fp32 tensor are first rounded to
// fp32, as PyTorch does; `scalar / tensor` is reciprocal(tensor) * scalar (Tensor.__rtruediv__).
#include "model/rope.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace brisk {
namespace {

float f32_add(float a, float b) { return float(double(a) + double(b)); }
float f32_sub(float a, float b) { return float(double(a) - double(b)); }
float f32_mul(float a, float b) { return float(double(a) * double(b)); }
float f32_div(float a, float b) { return float(double(a) / double(b)); }
// torch.pow on fp32 is accurate to about 1 ulp; the correctly rounded value is the best match.
float f32_pow(float a, float b) { return float(std::pow(double(a), double(b))); }
// `scalar / tensor` in PyTorch: reciprocal, then multiply.
float rdiv(double scalar, float t) { return f32_mul(f32_div(1.0f, t), float(scalar)); }

// base ** (arange(0, dim, 2).float() / dim): the unscaled position frequencies' inverses.
std::vector<float> pos_freqs(double base, int64_t dim) {
  std::vector<float> p(size_t(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) p[size_t(i)] = f32_pow(float(base), f32_div(float(2 * i), float(dim)));
  return p;
}

std::vector<float> default_inv_freq(double base, int64_t dim) {
  std::vector<float> inv = pos_freqs(base, dim);
  for (float& v : inv) v = rdiv(1.0, v);
  return inv;
}

void llama3_scale(std::vector<float>& inv, const RopeScaling& rs) {
  BRISK_CHECK(rs.original_max_position_embeddings > 0,
              "rope_scaling llama3 needs original_max_position_embeddings");
  BRISK_CHECK(rs.high_freq_factor != rs.low_freq_factor, "rope_scaling llama3: high_freq_factor (",
              rs.high_freq_factor, ") must differ from low_freq_factor");
  const double old_len = double(rs.original_max_position_embeddings);
  const float low_wavelen = float(old_len / rs.low_freq_factor);
  const float high_wavelen = float(old_len / rs.high_freq_factor);
  const float factor = float(rs.factor);
  for (float& f : inv) {
    const float wavelen = rdiv(2.0 * std::numbers::pi, f);
    const float scaled = wavelen > low_wavelen ? f32_div(f, factor) : f;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    if (!medium) {
      f = scaled;
      continue;
    }
    const float smooth = f32_div(f32_sub(rdiv(old_len, wavelen), float(rs.low_freq_factor)),
                                 float(rs.high_freq_factor - rs.low_freq_factor));
    f = f32_add(f32_div(f32_mul(f32_sub(1.0f, smooth), scaled), factor), f32_mul(smooth, scaled));
  }
}

// YaRN: dims below `low` keep the original frequency (extrapolation), dims above `high` are
// interpolated by 1/factor, with a linear ramp between.
std::vector<float> yarn_inv_freq(const ModelConfig& cfg, int64_t dim, float* mscale) {
  const RopeScaling& rs = cfg.rope_scaling;
  const double base = cfg.rope_theta, factor = rs.factor;
  const double orig = rs.original_max_position_embeddings > 0 ? double(rs.original_max_position_embeddings)
                                                              : double(cfg.max_position_embeddings);
  BRISK_CHECK(orig > 0, "rope_scaling yarn needs original_max_position_embeddings or max_position_embeddings");
  *mscale = float(rs.attention_factor > 0 ? rs.attention_factor : factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0);
  const double beta_fast = rs.beta_fast != 0 ? rs.beta_fast : 32.0;  // Python: `get(...) or 32`
  const double beta_slow = rs.beta_slow != 0 ? rs.beta_slow : 1.0;
  auto correction_dim = [&](double rotations) {
    return (double(dim) * std::log(orig / (rotations * 2 * std::numbers::pi))) / (2 * std::log(base));
  };
  double low = std::max(std::floor(correction_dim(beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(beta_slow)), double(dim - 1));
  if (low == high) high += 0.001;  // transformers: avoid a zero-width ramp
  std::vector<float> pos = pos_freqs(base, dim), inv(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) {
    float ramp = f32_div(f32_sub(float(i), float(low)), float(high - low));
    ramp = std::min(1.0f, std::max(0.0f, ramp));
    const float extrapolation_weight = f32_sub(1.0f, ramp);
    const float extrapolated = rdiv(1.0, pos[i]);
    const float interpolated = rdiv(1.0, f32_mul(float(factor), pos[i]));
    inv[i] = f32_add(f32_mul(interpolated, f32_sub(1.0f, extrapolation_weight)),
                     f32_mul(extrapolated, extrapolation_weight));
  }
  return inv;
}

}  // namespace

RopeTable make_rope_table(const ModelConfig& cfg, int64_t seq_len) {
  const int64_t dim = cfg.head_dim;
  const RopeScaling& rs = cfg.rope_scaling;
  BRISK_CHECK(dim > 0 && dim % 2 == 0, "rotary embedding needs an even, positive head_dim (got ", dim, ")");
  BRISK_CHECK(cfg.rope_theta > 0 && std::isfinite(cfg.rope_theta), "rope_theta must be positive (got ",
              cfg.rope_theta, ")");
  if (rs.type != RopeType::Default)
    BRISK_CHECK(rs.factor > 0 && std::isfinite(rs.factor), "rope_scaling ", rope_type_name(rs.type),
                ": factor must be positive (got ", rs.factor, ")");
  RopeTable t;
  t.n_freq = int(dim / 2);
  switch (rs.type) {
    case RopeType::Default:
      t.inv_freq = default_inv_freq(cfg.rope_theta, dim);
      break;
    case RopeType::Linear:
      t.inv_freq = default_inv_freq(cfg.rope_theta, dim);
      for (float& f : t.inv_freq) f = f32_div(f, float(rs.factor));
      break;
    case RopeType::Dynamic: {
      const int64_t max_pos = cfg.max_position_embeddings;
      BRISK_CHECK(max_pos > 0, "rope_scaling dynamic needs max_position_embeddings");
      BRISK_CHECK(dim > 2, "rope_scaling dynamic needs head_dim > 2 (got ", dim, ")");
      const double len = double(seq_len > max_pos ? seq_len : max_pos);
      const double base = cfg.rope_theta * std::pow(rs.factor * len / double(max_pos) - (rs.factor - 1),
                                                    double(dim) / double(dim - 2));
      t.inv_freq = default_inv_freq(base, dim);
      break;
    }
    case RopeType::Llama3:
      t.inv_freq = default_inv_freq(cfg.rope_theta, dim);
      llama3_scale(t.inv_freq, rs);
      break;
    case RopeType::Yarn:
      t.inv_freq = yarn_inv_freq(cfg, dim, &t.mscale);
      break;
  }
  // GGUF models carry their scaling as explicit per-frequency divisors (rope_freqs.weight).
  if (!cfg.rope_freq_factors.empty()) {
    BRISK_CHECK(int64_t(cfg.rope_freq_factors.size()) == t.n_freq, "rope_freqs has ", cfg.rope_freq_factors.size(),
                " factors, head_dim ", dim, " needs ", t.n_freq);
    for (int i = 0; i < t.n_freq; ++i) t.inv_freq[size_t(i)] = f32_div(t.inv_freq[size_t(i)], cfg.rope_freq_factors[size_t(i)]);
  }
  return t;
}

}  // namespace brisk
