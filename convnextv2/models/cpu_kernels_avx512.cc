// The CpuKernels built with AVX-512 (the copts of //convnextv2/models:cpu_kernels_avx512); only
// called after cpu_dispatch.cc has checked that the CPU has it.
#include "convnextv2/models/cpu_kernels.h"

#define CPU_KERNELS_NS avx512
#define CPU_KERNELS_NAME "avx512"
#define CPU_KERNELS_TABLE kAvx512CpuKernelsTable
#include "convnextv2/models/cpu_kernels_impl.inc"
