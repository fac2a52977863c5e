#include "convnextv2/data/dataset.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/class_names.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {

std::vector<std::string> Dataset::class_names() const {
  return NumberedClassNames(num_classes());
}

PrefixDataset::PrefixDataset(std::unique_ptr<Dataset> base, int64_t size)
    : base_(std::move(base)), size_(std::min(size, base_->size())) {}

std::string PrefixDataset::Describe() const {
  return absl::StrCat(base_->Describe(), ", first ", size_, " used");
}

absl::Status CheckClassCount(int nb_classes, int classes, ClassCount rule,
                             absl::string_view holds) {
  const bool fits = rule == ClassCount::kExact ? classes == nb_classes : classes <= nb_classes;
  if (fits) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("model.nb_classes is ", nb_classes, " but ", holds));
}

absl::StatusOr<std::unique_ptr<Dataset>> OpenDataset(const ExperimentConfig& config,
                                                     Split split, Labels labels) {
  absl::StatusOr<const DatasetEntry*> entry = FindDataset(config.data().data_set());
  if (!entry.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data.data_set: ", entry.status().message()));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(std::unique_ptr<Dataset> ds, (*entry)->open(config, split, labels));
  const int64_t limit = config.data().max_train_images();
  if (split != Split::kTrain) return ds;
  if (limit > 0) ds = std::make_unique<PrefixDataset>(std::move(ds), limit);
  if (labels == Labels::kUsed) {
    CONVNEXTV2_RETURN_IF_ERROR(CheckClassCount(
        config.model().nb_classes(), ds->num_classes(), ClassCount::kAtMost,
        absl::StrCat(ds->Describe(), " has labels up to ", ds->num_classes() - 1)));
  }
  return ds;
}

}  // namespace convnextv2::data
