// optim.layer_decay_type: how fine-tuning's layer-wise LR decay counts layers (the official
// --layer_decay_type). The config holds the string; the validator and param_groups parse it with
// this one table.
//
//   config::Checks checks(false);
//   LayerDecayTypes().Check(c.optim().layer_decay_type(), checks);   // "... is not one of: ..."
//   LayerDecayType t = LayerDecayTypes().Of(c.optim().layer_decay_type());
#ifndef CONVNEXTV2_OPTIM_LAYER_DECAY_TYPE_H_
#define CONVNEXTV2_OPTIM_LAYER_DECAY_TYPE_H_

#include "convnextv2/config/choices.h"

namespace convnextv2::optim {

enum class LayerDecayType {
  kSingle,  // "single": one layer per block (sum of the stage depths)
  kGroup,   // "group": 12 layers, stage 3's blocks in groups of 3 (base, large, huge)
};

inline const config::Choices<LayerDecayType>& LayerDecayTypes() {
  static const auto* const kTypes = new config::Choices<LayerDecayType>(
      "optim.layer_decay_type",
      {{"single", LayerDecayType::kSingle}, {"group", LayerDecayType::kGroup}});
  return *kTypes;
}

}  // namespace convnextv2::optim

#endif  // CONVNEXTV2_OPTIM_LAYER_DECAY_TYPE_H_
