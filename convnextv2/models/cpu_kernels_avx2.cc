// The CpuKernels built with AVX2 + FMA (the copts of //convnextv2/models:cpu_kernels_avx2); only
// called after cpu_dispatch.cc has checked that the CPU has them.
#include "convnextv2/models/cpu_kernels.h"

#define CPU_KERNELS_NS avx2
#define CPU_KERNELS_NAME "avx2"
#define CPU_KERNELS_TABLE kAvx2CpuKernelsTable
#include "convnextv2/models/cpu_kernels_impl.inc"
