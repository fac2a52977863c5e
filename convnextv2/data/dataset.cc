#include "convnextv2/data/dataset.h"

#include "absl/strings/str_cat.h"
#include "convnextv2/data/idx_dataset.h"
#include "convnextv2/data/synthetic_dataset.h"

namespace convnextv2::data {

absl::StatusOr<std::unique_ptr<Dataset>> OpenDataset(const ExperimentConfig& config,
                                                     Split split) {
  const DataConfig& d = config.data();
  if (d.data_set() == "IDX") {
    absl::StatusOr<std::unique_ptr<IdxDataset>> ds = IdxDataset::Open(d.data_path(), split);
    if (!ds.ok()) return ds.status();
    return std::unique_ptr<Dataset>(std::move(*ds));
  }
  if (d.data_set() == "synthetic") {
    const int64_t size =
        split == Split::kTrain ? d.synthetic_train_size() : d.synthetic_eval_size();
    // Train and eval images differ (another seed) but follow the same class patterns.
    const uint64_t seed = static_cast<uint64_t>(config.train().seed()) * 2 + (split == Split::kEval);
    return std::unique_ptr<Dataset>(new SyntheticDataset(
        size, config.model().nb_classes(), config.model().input_size(), seed));
  }
  return absl::UnimplementedError(
      absl::StrCat("data.data_set ", d.data_set(), " is not supported by this build yet"));
}

}  // namespace convnextv2::data
