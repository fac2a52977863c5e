// Picks the CpuKernels for this CPU (cpu_kernels.h).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "convnextv2/models/cpu_kernels.h"

namespace convnextv2::models::internal {
extern const CpuKernels kAvx2CpuKernelsTable;    // cpu_kernels_avx2.cc
extern const CpuKernels kAvx512CpuKernelsTable;  // cpu_kernels_avx512.cc

namespace {

bool CpuHas(CpuIsa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c") && __builtin_cpu_supports("bmi2");
  if (isa == CpuIsa::kAvx2) return avx2;
  if (isa == CpuIsa::kAvx512) {
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bf16");
  }
#endif
  return isa == CpuIsa::kGeneric;
}

constexpr struct {
  const char* name;
  CpuIsa isa;
  const char* needs;
} kLevels[] = {
    {"generic", CpuIsa::kGeneric, "nothing"},
    {"avx2", CpuIsa::kAvx2, "AVX2, FMA, F16C and BMI2"},
    {"avx512", CpuIsa::kAvx512, "AVX2, FMA, F16C, BMI2 and AVX512F/BW/VL/DQ/BF16"},
};

// The widest build this CPU runs, or the one CONVNEXTV2_CPU_KERNELS names; a name that is not
// a level, or a level this CPU lacks, ends the program with a message (a forced level is what
// a benchmark or a test asked for: running another one instead would mislead).
const CpuKernels* Choose() {
  const CpuKernels* widest = &kGenericCpuKernels;
  for (const CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvx512}) {
    if (const CpuKernels* k = CpuKernelsFor(isa)) widest = k;
  }
  const char* env = std::getenv("CONVNEXTV2_CPU_KERNELS");
  if (env == nullptr || *env == '\0') return widest;
  for (const auto& level : kLevels) {
    if (std::strcmp(env, level.name) != 0) continue;
    if (const CpuKernels* k = CpuKernelsFor(level.isa)) return k;
    std::fprintf(stderr,
                 "CONVNEXTV2_CPU_KERNELS=%s: this CPU lacks what that build needs (%s); the "
                 "widest it runs is %s\n",
                 env, level.needs, widest->name);
    std::exit(2);
  }
  std::fprintf(stderr,
               "CONVNEXTV2_CPU_KERNELS=%s is not a kernel build: use generic, avx2 or avx512 "
               "(or leave it unset for the widest this CPU runs, %s)\n",
               env, widest->name);
  std::exit(2);
}

std::atomic<const CpuKernels*>& Active() {
  static std::atomic<const CpuKernels*> active{Choose()};
  return active;
}

}  // namespace

const CpuKernels* CpuKernelsFor(CpuIsa isa) {
  static const bool avx2 = CpuHas(CpuIsa::kAvx2), avx512 = CpuHas(CpuIsa::kAvx512);
  switch (isa) {
    case CpuIsa::kGeneric:
      return &kGenericCpuKernels;
    case CpuIsa::kAvx2:
      return avx2 ? &kAvx2CpuKernelsTable : nullptr;
    case CpuIsa::kAvx512:
      return avx512 ? &kAvx512CpuKernelsTable : nullptr;
  }
  return nullptr;
}

const CpuKernels& ActiveCpuKernels() { return *Active().load(std::memory_order_relaxed); }

const CpuKernels* SetActiveCpuKernelsForTesting(const CpuKernels* kernels) {
  return Active().exchange(kernels);
}

}  // namespace convnextv2::models::internal
