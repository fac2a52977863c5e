// Deterministic random numbers keyed by what they are for, never by call order across threads.
//
// Every random draw of a run comes from a generator seeded by (seed, epoch, sample index,
// purpose), so the data a model sees does not depend on thread counts or timing, and a resumed
// epoch replays exactly:
//
//   SampleRng rng(KeyedSeed(seed, epoch, index, Purpose::kTransform));
//   if (rng.Bernoulli(0.5)) Flip(image);
#ifndef CONVNEXTV2_DATA_RNG_H_
#define CONVNEXTV2_DATA_RNG_H_

#include <cstdint>

namespace convnextv2::data {

// What a stream of draws is for; separate purposes give independent streams.
enum class Purpose : uint64_t {
  kShuffle = 1,
  kTransform = 2,
  kSynthetic = 3,
  kMixup = 4,
  kErase = 5,
  kMask = 6,
};

// SplitMix64 finalizer: a bijective 64-bit mix.
uint64_t Mix64(uint64_t x);

// A seed for (seed, a, b, purpose), well spread even for consecutive inputs.
uint64_t KeyedSeed(uint64_t seed, uint64_t a, uint64_t b, Purpose purpose);

// xoshiro256** seeded through SplitMix64: small, fast, good statistical quality.
class SampleRng {
 public:
  explicit SampleRng(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1) with 53 random bits.
  double Uniform();
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n), n > 0 (rejection sampling: no modulo bias).
  uint64_t Below(uint64_t n);
  bool Bernoulli(double p) { return Uniform() < p; }
  // Standard normal (Box-Muller, one of the pair).
  double Normal();

 private:
  uint64_t s_[4];
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_RNG_H_
