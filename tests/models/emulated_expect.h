// What the emulated CUDA tests (grn_cuda_emulated_test, cuda_ops_emulated_test) count as equal to
// their float64 reference, per dtype.
#ifndef CONVNEXTV2_TESTS_MODELS_EMULATED_EXPECT_H_
#define CONVNEXTV2_TESTS_MODELS_EMULATED_EXPECT_H_

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

namespace convnextv2::models::testing_emulated {

// Relative to the reference's largest magnitude (atol) and to each element (rtol): a value
// stored in `dtype` carries its rounding; float32 statistics carry float32's.
struct Tolerance {
  double rtol;
  double atol;
};

inline Tolerance ToleranceFor(at::ScalarType t) {
  switch (t) {
    case at::kHalf:
      return {2e-3, 2e-3};  // 11-bit significand: rounding is within 4.9e-4 relative
    case at::kBFloat16:
      return {1.6e-2, 1.6e-2};  // 8-bit significand: rounding is within 3.9e-3 relative
    default:
      return {1e-4, 1e-5};
  }
}

// Fails naming the worst element unless |actual - expected| <= atol * max|expected| +
// rtol * |expected| everywhere, and both are defined, of one shape and finite.
inline void ExpectClose(const at::Tensor& actual, const at::Tensor& expected, Tolerance tol,
                        const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what << ": undefined (no gradient?)";
  ASSERT_TRUE(expected.defined()) << what << ": no reference";
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const at::Tensor a = actual.to(at::kDouble);
  const at::Tensor e = expected.to(at::kDouble);
  ASSERT_TRUE(a.isfinite().all().item<bool>()) << what << ": not finite";
  const double scale = e.abs().max().item<double>();
  const at::Tensor excess = (a - e).abs() - (tol.atol * scale + tol.rtol * e.abs());
  const int64_t worst = excess.argmax().item<int64_t>();
  EXPECT_LE(excess.flatten()[worst].item<double>(), 0.0)
      << what << ": element " << worst << " is " << a.flatten()[worst].item<double>()
      << ", expected " << e.flatten()[worst].item<double>() << " (scale " << scale << ")";
}

}  // namespace convnextv2::models::testing_emulated

#endif  // CONVNEXTV2_TESTS_MODELS_EMULATED_EXPECT_H_
