// The CpuKernels built for the baseline target of the build (-march=x86-64-v2).
#include "convnextv2/models/cpu_kernels.h"

#define CPU_KERNELS_NS generic
#define CPU_KERNELS_NAME "generic"
#define CPU_KERNELS_TABLE kGenericCpuKernels
#include "convnextv2/models/cpu_kernels_impl.inc"
