// The models package's part of config validation: model.* (a registered variant by its
// official name, input size, drop path, classes) and fcmae.* (mask ratio, decoder, patch size;
// pre-training only settings).
//
//   config::Checks checks(/*pretrain=*/false);
//   models::CheckModelConfig(config, checks);   // config::Validate calls this
//
// No libtorch: the variant table is models/variants.
#ifndef CONVNEXTV2_MODELS_CONFIG_CHECKS_H_
#define CONVNEXTV2_MODELS_CONFIG_CHECKS_H_

#include "convnextv2/config/checks.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::models {

void CheckModelConfig(const ExperimentConfig& config, config::Checks& checks);

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_CONFIG_CHECKS_H_
