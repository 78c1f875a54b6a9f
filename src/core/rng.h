// Deterministic random numbers that are identical on every platform and compiler: splitmix64
// for seeding, xoshiro256** for streams, and distributions built only from integer arithmetic
// and exact float operations (no libm), so `brisk init-model --seed N` writes the same bytes
// everywhere.
#pragma once
#include <cstdint>

namespace brisk {

inline uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed) {
    uint64_t x = seed;
    for (auto& v : s_) v = splitmix64(x);
  }
  uint64_t next() {
    uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, 1) with 24 random bits (exact in float).
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform_double() { return double(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }
  // Approximately normal (Irwin-Hall sum of 12 uniforms, mean 0, variance 1): exact arithmetic.
  float normal() {
    float s = 0;
    for (int i = 0; i < 12; ++i) s += uniform();
    return s - 6.0f;
  }
  // Serialisable state (for checkpoints that resume bit for bit).
  const uint64_t* state() const { return s_; }
  void set_state(const uint64_t st[4]) { for (int i = 0; i < 4; ++i) s_[i] = st[i]; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace brisk
