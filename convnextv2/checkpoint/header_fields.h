// The checkpoint header's choice fields as enums. `kind` and `best_of` stay strings in the file
// (users' files hold them, PyTorch code reads them: load_in_pytorch.py); code reads and writes
// them only through these, so an unknown value is one clear error naming the file.
//
//   absl::StatusOr<Kind> kind = KindOf(ckpt.header, path);   // "training" -> Kind::kTraining
//   SetKind(Kind::kWeights, &header);
//   SetBestOf(BestOf::kModelEma, &header);                    // best_of: "model_ema"
#ifndef CONVNEXTV2_CHECKPOINT_HEADER_FIELDS_H_
#define CONVNEXTV2_CHECKPOINT_HEADER_FIELDS_H_

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/checkpoint/checkpoint.pb.h"

namespace convnextv2::checkpoint {

enum class Kind {
  kTraining,  // "training": the full state that resuming continues exactly
  kWeights,   // "weights": model tensors only (checkpoint-best*.pth)
};

enum class BestOf {
  kModel,     // "model"
  kModelEma,  // "model_ema"
};

// InvalidArgument "<file>: header kind: '<value>' is not one of: training, weights" otherwise
// (an absent kind reads as '').
absl::StatusOr<Kind> KindOf(const CheckpointHeader& header, absl::string_view file);
// std::nullopt when the header has no best_of (everything but checkpoint-best*.pth).
absl::StatusOr<std::optional<BestOf>> BestOfOf(const CheckpointHeader& header,
                                               absl::string_view file);

absl::string_view KindName(Kind kind);
absl::string_view BestOfName(BestOf best_of);
void SetKind(Kind kind, CheckpointHeader* header);
void SetBestOf(BestOf best_of, CheckpointHeader* header);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_HEADER_FIELDS_H_
