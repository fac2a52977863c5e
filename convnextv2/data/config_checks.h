// The data package's part of config validation: data.* (a registered dataset and what it
// requires, loader settings) and aug.* (timm's augmentation, RandAugment, Mixup/CutMix,
// random erasing).
//
//   config::Checks checks(/*pretrain=*/false);
//   data::CheckDataConfig(config, checks);   // config::Validate calls this
//
// No libtorch and no filesystem access (config::CheckPaths looks at the folders).
#ifndef CONVNEXTV2_DATA_CONFIG_CHECKS_H_
#define CONVNEXTV2_DATA_CONFIG_CHECKS_H_

#include "convnextv2/config/checks.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::data {

void CheckDataConfig(const ExperimentConfig& config, config::Checks& checks);

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_CONFIG_CHECKS_H_
