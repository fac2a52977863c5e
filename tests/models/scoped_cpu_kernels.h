// For the CPU-kernel tests: makes one build of the layers' kernels (cpu_kernels.h) the active
// one for a scope, and lists the builds this CPU runs.
//
//   for (const CpuKernels* k : RunnableCpuKernels()) {  // generic first
//     ScopedCpuKernels scope(k);
//     ...                                                 // the layers call k's kernels
//   }
#ifndef CONVNEXTV2_TESTS_MODELS_SCOPED_CPU_KERNELS_H_
#define CONVNEXTV2_TESTS_MODELS_SCOPED_CPU_KERNELS_H_

#include <cstdio>
#include <vector>

#include "convnextv2/models/cpu_kernels.h"

namespace convnextv2::models::testing_kernels {

class ScopedCpuKernels {
 public:
  explicit ScopedCpuKernels(const internal::CpuKernels* kernels)
      : previous_(internal::SetActiveCpuKernelsForTesting(kernels)) {}
  ~ScopedCpuKernels() { internal::SetActiveCpuKernelsForTesting(previous_); }
  ScopedCpuKernels(const ScopedCpuKernels&) = delete;
  ScopedCpuKernels& operator=(const ScopedCpuKernels&) = delete;

 private:
  const internal::CpuKernels* previous_;
};

// Every build this CPU runs, the baseline first; each one it lacks is printed as skipped.
inline std::vector<const internal::CpuKernels*> RunnableCpuKernels() {
  std::vector<const internal::CpuKernels*> out;
  const struct {
    internal::CpuIsa isa;
    const char* name;
  } levels[] = {{internal::CpuIsa::kGeneric, "generic"},
                {internal::CpuIsa::kAvx2, "avx2"},
                {internal::CpuIsa::kAvx512, "avx512"}};
  for (const auto& level : levels) {
    if (const internal::CpuKernels* k = internal::CpuKernelsFor(level.isa)) {
      out.push_back(k);
    } else {
      std::printf("SKIPPED the %s build: this CPU lacks its instructions\n", level.name);
    }
  }
  return out;
}

}  // namespace convnextv2::models::testing_kernels

#endif  // CONVNEXTV2_TESTS_MODELS_SCOPED_CPU_KERNELS_H_
