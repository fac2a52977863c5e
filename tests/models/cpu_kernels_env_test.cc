// CONVNEXTV2_CPU_KERNELS=generic makes the layers use the baseline kernels even on an AVX-512
// CPU. Its own binary: the choice is read once, at the first ActiveCpuKernels().
#include <gtest/gtest.h>

#include <cstdlib>

#include "convnextv2/models/cpu_kernels.h"

namespace convnextv2::models::internal {
namespace {

TEST(CpuKernelsEnv, GenericForcesTheBaseline) {
  ASSERT_EQ(setenv("CONVNEXTV2_CPU_KERNELS", "generic", /*overwrite=*/1), 0);
  EXPECT_EQ(&ActiveCpuKernels(), &kGenericCpuKernels);
  // The wide builds stay reachable (for tests) where the CPU has them.
  if (const CpuKernels* k = CpuKernelsFor(CpuIsa::kAvx2)) {
    EXPECT_STREQ(k->name, "avx2");
  }
  if (const CpuKernels* k = CpuKernelsFor(CpuIsa::kAvx512)) {
    EXPECT_STREQ(k->name, "avx512");
  }
}

}  // namespace
}  // namespace convnextv2::models::internal
