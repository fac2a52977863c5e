// The CPU emulation's float16 (see cuda_runtime_api.h here): c10::Half, whose conversion from
// float rounds to nearest even, as __float2half_rn does.
#ifndef CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_FP16_H_
#define CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_FP16_H_

#include <c10/util/Half.h>

using __half = c10::Half;
inline float __half2float(__half v) { return static_cast<float>(v); }
inline __half __float2half_rn(float v) { return __half(v); }

#endif  // CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_FP16_H_
