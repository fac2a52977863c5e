#include "convnextv2/data/rng.h"

#include <cmath>

namespace convnextv2::data {

uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t KeyedSeed(uint64_t seed, uint64_t a, uint64_t b, Purpose purpose) {
  uint64_t h = Mix64(seed);
  h = Mix64(h ^ a);
  h = Mix64(h ^ b);
  return Mix64(h ^ static_cast<uint64_t>(purpose));
}

SampleRng::SampleRng(uint64_t seed) {
  for (uint64_t& s : s_) {
    seed = Mix64(seed);
    s = seed;
  }
}

uint64_t SampleRng::Next() {
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double SampleRng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

uint64_t SampleRng::Below(uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = Next();
  } while (x >= limit);
  return x % n;
}

double SampleRng::Normal() {
  double u1;
  do {
    u1 = Uniform();
  } while (u1 <= 0.0);
  const double u2 = Uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace convnextv2::data
