// Fused softmax cross-entropy: the loss and its gradient in one sweep per row, never holding
// more than the row itself. Per row: max (fp32), sum of exp(l - max) (fp32 exp, double sum),
// loss = log(sum) + max - l[label] in double; the exps are parked in dlogits and then scaled
// into grad_scale * (softmax - onehot). Every element is read before it is written, so
// dlogits may alias logits.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops.h"
#include "core/thread_pool.h"

namespace brisk::ops {

namespace {
constexpr int32_t kIgnoreLabel = -100;
}

double cross_entropy(const Tensor& logits, const int32_t* labels, Tensor dlogits, float grad_scale) {
  BRISK_ASSERT(logits.device == Device::CPU && dlogits.device == Device::CPU);
  BRISK_ASSERT(logits.dtype == DType::F32 && dlogits.dtype == DType::F32 && logits.is_contiguous() &&
                   dlogits.is_contiguous() && logits.ndim() >= 1 && logits.shape == dlogits.shape,
               "cross_entropy: logits ", logits.desc(), " dlogits ", dlogits.desc());
  const int64_t V = logits.dim(-1);
  BRISK_ASSERT(V > 0, "cross_entropy: empty vocabulary ", logits.desc());
  const int64_t n = logits.numel() / V;
  // Labels come from the dataset: check them all before anything is overwritten (in place).
  for (int64_t i = 0; i < n; ++i)
    BRISK_CHECK(labels[i] == kIgnoreLabel || (labels[i] >= 0 && labels[i] < V), "cross_entropy: label ", labels[i],
                " of row ", i, " is out of range for vocabulary size ", V, " (-100 marks an ignored row)");

  const float* lp = logits.f32();
  float* dp = dlogits.f32();
  std::vector<double> row_loss(size_t(n), 0.0);  // summed in row order: thread-count independent
  parallel_for(n, std::max<int64_t>(1, 32768 / V), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* l = lp + r * V;
      float* d = dp + r * V;
      const int32_t label = labels[r];
      if (label == kIgnoreLabel) {
        std::fill(d, d + V, 0.0f);
        continue;
      }
      const float target = l[label];
      float mx = -INFINITY;
      for (int64_t j = 0; j < V; ++j) mx = std::max(mx, l[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < V; ++j) {
        const float e = std::exp(l[j] - mx);
        d[j] = e;
        sum += e;
      }
      row_loss[size_t(r)] = std::log(sum) + double(mx) - double(target);
      const double inv = 1.0 / sum, e_label = d[label];
      const float k = float(double(grad_scale) * inv);
      for (int64_t j = 0; j < V; ++j) d[j] *= k;
      d[label] = float(double(grad_scale) * (e_label * inv - 1.0));  // p - 1 without fp32 cancellation
    }
  });
  double total = 0.0;
  for (double x : row_loss) total += x;
  return total;
}

}  // namespace brisk::ops
