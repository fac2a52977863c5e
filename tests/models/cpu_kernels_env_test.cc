// CONVNEXTV2_CPU_KERNELS: `generic` makes the layers use the baseline kernels on any CPU, `avx2`
// the AVX2 build where the CPU has it, and a level the CPU lacks or a name that is no level ends
// the program with a message saying so. Its own binary: the choice is read once, at the first
// ActiveCpuKernels(); the other cases run in a fresh child process each (death tests,
// "threadsafe" style: the child re-runs the test from the start).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

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

// In a child: forces `level`, exits 0 printing the name of the build chosen.
void ChooseAndReport(const char* level) {
  setenv("CONVNEXTV2_CPU_KERNELS", level, /*overwrite=*/1);
  std::fprintf(stderr, "chose %s\n", ActiveCpuKernels().name);
  std::exit(0);
}

TEST(CpuKernelsEnv, Avx2ForcesTheAvx2Build) {
  if (CpuKernelsFor(CpuIsa::kAvx2) == nullptr) {
    GTEST_SKIP() << "SKIPPED: this CPU lacks AVX2+FMA, so there is no avx2 build to force";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ChooseAndReport("avx2"), testing::ExitedWithCode(0), "chose avx2");
}

TEST(CpuKernelsEnv, ForcingALevelThisCpuLacksFailsSayingSo) {
  if (CpuKernelsFor(CpuIsa::kAvx512) != nullptr) {
    GTEST_SKIP() << "SKIPPED: this CPU runs every build (AVX-512 included): none to fail on";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ChooseAndReport("avx512"), testing::ExitedWithCode(2),
              "CONVNEXTV2_CPU_KERNELS=avx512: this CPU lacks what that build needs");
}

TEST(CpuKernelsEnv, AnUnknownNameFailsSayingSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(ChooseAndReport("avx1024"), testing::ExitedWithCode(2),
              "CONVNEXTV2_CPU_KERNELS=avx1024 is not a kernel build: use generic, avx2 or avx512");
}

}  // namespace
}  // namespace convnextv2::models::internal
