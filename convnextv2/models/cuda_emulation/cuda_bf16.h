// The CPU emulation's bfloat16 (see cuda_runtime_api.h here): c10::BFloat16, whose conversion
// from float rounds to nearest even, as __float2bfloat16_rn does.
#ifndef CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_BF16_H_
#define CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_BF16_H_

#include <c10/util/BFloat16.h>

using __nv_bfloat16 = c10::BFloat16;
inline float __bfloat162float(__nv_bfloat16 v) { return static_cast<float>(v); }
inline __nv_bfloat16 __float2bfloat16_rn(float v) { return __nv_bfloat16(v); }

#endif  // CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_BF16_H_
