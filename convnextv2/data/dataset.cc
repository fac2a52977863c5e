#include "convnextv2/data/dataset.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/class_names.h"
#include "convnextv2/data/datasets.h"

namespace convnextv2::data {

std::vector<std::string> Dataset::class_names() const {
  return NumberedClassNames(num_classes());
}

PrefixDataset::PrefixDataset(std::unique_ptr<Dataset> base, int64_t size)
    : base_(std::move(base)), size_(std::min(size, base_->size())) {}

std::string PrefixDataset::Describe() const {
  return absl::StrCat(base_->Describe(), ", first ", size_, " used");
}

absl::StatusOr<std::unique_ptr<Dataset>> OpenDataset(const ExperimentConfig& config,
                                                     Split split, Labels labels) {
  absl::StatusOr<const DatasetEntry*> entry = FindDataset(config.data().data_set());
  if (!entry.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data.data_set: ", entry.status().message()));
  }
  absl::StatusOr<std::unique_ptr<Dataset>> ds = (*entry)->open(config, split, labels);
  const int64_t limit = config.data().max_train_images();
  if (!ds.ok() || split != Split::kTrain || limit <= 0) return ds;
  return std::unique_ptr<Dataset>(new PrefixDataset(std::move(*ds), limit));
}

}  // namespace convnextv2::data
