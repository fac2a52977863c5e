// Evaluation of a classifier over a loader: engine_finetune.py's evaluate(). Used by
// fine-tuning after every epoch (the model and, with model_ema_eval, its EMA) and by eval.eval.
//
//   absl::StatusOr<EvalStats> s = Evaluate(model, loader, device, recipe, /*comm=*/nullptr);
//   if (s.ok()) LOG(INFO) << s->acc1;
//
// With `comm` (dist_eval in a multi-process run) every rank evaluates its shard and the sums
// are added up; the samples the sampler repeated to even out the ranks (the batch's padding)
// are not counted, so the result is exactly that of one process over the whole set, for any
// number of processes. Logs the official "Test: [ i/n] ..." progress every 10 batches.
#ifndef CONVNEXTV2_APPS_EVALUATE_H_
#define CONVNEXTV2_APPS_EVALUATE_H_

#include <c10/core/Device.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/models/convnextv2.h"
#include "convnextv2/train/recipe.h"

namespace convnextv2::apps {

struct EvalStats {
  double acc1 = 0;  // percent
  double acc5 = 0;  // percent
  double loss = 0;  // mean cross-entropy
  int64_t samples = 0;
};

// Runs `model` in eval mode without gradients, under the recipe's autocast (the official
// evaluate(use_amp=...)). Errors: the loader's (an unreadable image) or the reduction's.
absl::StatusOr<EvalStats> Evaluate(models::ConvNeXtV2& model, const data::Loader& loader,
                                   c10::Device device, const train::TrainingRecipe& recipe,
                                   dist::Communicator* comm);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_EVALUATE_H_
