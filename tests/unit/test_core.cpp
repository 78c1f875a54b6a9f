// core: exact dtype conversions (checked against the CPU's own F16C instructions and a
// reference bf16 rounding), tensor views, arenas, the thread pool, error helpers.
#include <gtest/gtest.h>
#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace brisk {
namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(DType, F16ToF32MatchesHardwareForEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float want = _cvtsh_ss(uint16_t(h));
    float got = f16_to_f32(uint16_t(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(bits(got), bits(want)) << "half 0x" << std::hex << h;
    }
  }
}

TEST(DType, F32ToF16MatchesHardwareRounding) {
  Rng rng(1);
  int64_t checked = 0;
  auto check = [&](float f) {
    uint16_t want = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
    uint16_t got = f32_to_f16(f);
    if (std::isnan(f)) {
      EXPECT_EQ(got & 0x7c00, 0x7c00);
      EXPECT_NE(got & 0x3ff, 0);
    } else {
      ASSERT_EQ(got, want) << "f32 bits 0x" << std::hex << bits(f);
    }
    ++checked;
  };
  for (int i = 0; i < 2000000; ++i) check(from_bits(uint32_t(rng.next())));  // every exponent
  for (int i = 0; i < 2000000; ++i) check(rng.uniform(-70000.0f, 70000.0f));
  for (uint32_t e = 0x33000000u - 8; e < 0x33000000u + 8; ++e) check(from_bits(e));  // round-to-zero edge
  for (uint32_t e = 0x477fe000u; e < 0x47800000u + 4; ++e) check(from_bits(e));      // overflow edge
  for (uint32_t h = 0; h < 65536; ++h) {  // every half and both midpoints next to it
    float f = _cvtsh_ss(uint16_t(h));
    if (std::isnan(f) || std::isinf(f)) continue;
    check(f);
    check(from_bits(bits(f) + 0x1000));
    check(from_bits(bits(f) - 0x1000));
  }
  EXPECT_GT(checked, 4000000);
}

TEST(DType, BF16RoundsToNearestEven) {
  Rng rng(2);
  for (int i = 0; i < 1000000; ++i) {
    uint32_t u = uint32_t(rng.next());
    float f = from_bits(u);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
      continue;
    }
    // Reference: pick the nearer of the two truncations; ties to the even one.
    uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
    // An overflowing `hi` (infinity) stands for 2^128 when measuring distance, as IEEE does.
    double vhi = std::isinf(from_bits(hi)) ? std::copysign(std::ldexp(1.0, 128), double(f)) : double(from_bits(hi));
    double dlo = std::fabs(double(from_bits(lo)) - double(f)), dhi = std::fabs(vhi - double(f));
    uint32_t want = dlo < dhi ? lo : dhi < dlo ? hi : (((lo >> 16) & 1) ? hi : lo);
    ASSERT_EQ(uint32_t(f32_to_bf16(f)) << 16, want) << std::hex << u;
  }
}

TEST(Tensor, ViewsShareStorageAndKeepStrides) {
  HostTensor h(DType::F32, {4, 3});
  for (int i = 0; i < 12; ++i) h.f32()[i] = float(i);
  Tensor r = h.t.rows(1, 3);
  EXPECT_EQ(r.shape, (Shape{2, 3}));
  EXPECT_EQ(r.f32()[0], 3.0f);
  Tensor s = h.t.select(2);
  EXPECT_EQ(s.ndim(), 1);
  EXPECT_EQ(s.f32()[2], 8.0f);
  EXPECT_EQ(h.t.reshape({3, 4}).dim(1), 4);
  EXPECT_TRUE(h.t.is_contiguous());
  EXPECT_EQ(h.t.desc(), "F32[4, 3] cpu");
}

TEST(Arena, PlanCoversEveryAllocation) {
  MemoryPlan p;
  p.add("a", DType::F32, {3, 5});
  p.add("b", 7);
  Arena a(p.total());
  void* x = a.alloc(60);
  void* y = a.alloc(7);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(x) % kArenaAlign, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(y) % kArenaAlign, 0u);
  EXPECT_EQ(a.used(), p.total());
  EXPECT_NE(p.table().find("total"), std::string::npos);
}

TEST(ThreadPool, CoversTheRangeOnceAndPropagatesErrors) {
  std::vector<std::atomic<int>> hits(10007);
  parallel_for(10007, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  EXPECT_THROW(parallel_for(1000, 1, [](int64_t b, int64_t) {
                 if (b > 0) throw Error("boom");
               }),
               Error);
  // Nested calls run serially instead of deadlocking.
  std::atomic<int> n{0};
  parallel_for(4, 1, [&](int64_t ob, int64_t oe) {
    for (int64_t i = ob; i < oe; ++i) parallel_for(100, 1, [&](int64_t b, int64_t e) { n += int(e - b); });
  });
  EXPECT_EQ(n.load(), 400);
}

TEST(Errors, WithContextPrefixesTheMessage) {
  try {
    with_context("reading x.json", [] { throw Error("bad"); });
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "reading x.json: bad");
  }
}

}  // namespace
}  // namespace brisk
