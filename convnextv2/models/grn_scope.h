// fcmae.grn_scope: what GRN normalizes over in the FCMAE encoder's masked (sparse) stages. The
// config holds the string; the validator and the model builder parse it with this one table.
//
//   GrnScopes().Check(config.fcmae().grn_scope(), checks);   // "fcmae.grn_scope: 'x' is not ..."
//   FCMAEOptions().grn_scope(GrnScopes().Of(config.fcmae().grn_scope()));
//
// No libtorch: the launcher validates sweeps with it.
#ifndef CONVNEXTV2_MODELS_GRN_SCOPE_H_
#define CONVNEXTV2_MODELS_GRN_SCOPE_H_

#include "convnextv2/config/choices.h"

namespace convnextv2::models {

enum class GrnScope {
  kPerSample,  // "sample": norm over one sample's visible sites (the paper's JAX code)
  kBatch,      // "batch": norm over all visible sites of the batch (the official MinkowskiGRN)
};

inline const config::Choices<GrnScope>& GrnScopes() {
  static const auto* const kScopes = new config::Choices<GrnScope>(
      "fcmae.grn_scope", {{"sample", GrnScope::kPerSample}, {"batch", GrnScope::kBatch}});
  return *kScopes;
}

}  // namespace convnextv2::models

#endif  // CONVNEXTV2_MODELS_GRN_SCOPE_H_
