#include "convnextv2/data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/cifar_dataset.h"
#include "convnextv2/data/idx_dataset.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/synthetic_dataset.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {
namespace {

// Folder datasets: the class count must be nb_classes (as the official script asserts), and the
// evaluation classes must be the training ones, or labels would silently mean different things.
absl::StatusOr<std::unique_ptr<Dataset>> OpenFolder(const ExperimentConfig& config,
                                                    const std::string& root,
                                                    const std::string& train_root,
                                                    Labels labels) {
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  CONVNEXTV2_RETURN_IF_ERROR(ds);
  if (labels == Labels::kUsed && (*ds)->num_classes() != config.model().nb_classes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.nb_classes is ", config.model().nb_classes(), " but image folder '", root,
        "' has ", (*ds)->num_classes(), " class folders"));
  }
  if (!train_root.empty() && train_root != root) {
    absl::StatusOr<std::unique_ptr<ImageFolder>> train = ImageFolder::Open(train_root);
    CONVNEXTV2_RETURN_IF_ERROR(train);
    const auto& a = (*train)->classes();
    const auto& b = (*ds)->classes();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      if (a[i] != b[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "class folders differ between '", train_root, "' and '", root, "': class ", i,
            " is '", a[i], "' in one and '", b[i], "' in the other"));
      }
    }
  }
  return std::unique_ptr<Dataset>(std::move(*ds));
}

absl::StatusOr<std::unique_ptr<Dataset>> OpenWholeDataset(const ExperimentConfig& config,
                                                          Split split, Labels labels) {
  const DataConfig& d = config.data();
  const bool train = split == Split::kTrain;
  if (d.data_set() == "IMNET") {
    const std::string train_dir = (std::filesystem::path(d.data_path()) / "train").string();
    const std::string val_dir = (std::filesystem::path(d.data_path()) / "val").string();
    return train ? OpenFolder(config, train_dir, "", labels)
                 : OpenFolder(config, val_dir, train_dir, labels);
  }
  if (d.data_set() == "image_folder") {
    if (train) return OpenFolder(config, d.data_path(), "", labels);
    if (d.eval_data_path().empty()) {
      return absl::InvalidArgumentError(
          "data.eval_data_path: empty; data_set image_folder evaluates on that folder "
          "(or set eval.disable_eval)");
    }
    return OpenFolder(config, d.eval_data_path(), d.data_path(), labels);
  }
  if (d.data_set() == "CIFAR") {
    absl::StatusOr<std::unique_ptr<CifarDataset>> ds = CifarDataset::Open(d.data_path(), split);
    CONVNEXTV2_RETURN_IF_ERROR(ds);
    // The binaries take nb_classes from the files (config::ResolveDataClasses), as the
    // official build_dataset does; a config that bypassed that must not train a wrong head.
    if (labels == Labels::kUsed && (*ds)->num_classes() != config.model().nb_classes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model.nb_classes is ", config.model().nb_classes(), " but CIFAR folder '",
          d.data_path(), "' holds CIFAR-", (*ds)->num_classes(), " (",
          (*ds)->num_classes(), " classes); the binaries set it from the files "
          "(config::ResolveDataClasses)"));
    }
    return std::unique_ptr<Dataset>(std::move(*ds));
  }
  if (d.data_set() == "IDX") {
    absl::StatusOr<std::unique_ptr<IdxDataset>> ds = IdxDataset::Open(d.data_path(), split);
    CONVNEXTV2_RETURN_IF_ERROR(ds);
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
  return absl::InvalidArgumentError(absl::StrCat("data.data_set: unknown '", d.data_set(), "'"));
}

}  // namespace

PrefixDataset::PrefixDataset(std::unique_ptr<Dataset> base, int64_t size)
    : base_(std::move(base)), size_(std::min(size, base_->size())) {}

std::string PrefixDataset::Describe() const {
  return absl::StrCat(base_->Describe(), ", first ", size_, " used");
}

absl::StatusOr<std::unique_ptr<Dataset>> OpenDataset(const ExperimentConfig& config,
                                                     Split split, Labels labels) {
  absl::StatusOr<std::unique_ptr<Dataset>> ds = OpenWholeDataset(config, split, labels);
  const int64_t limit = config.data().max_train_images();
  if (!ds.ok() || split != Split::kTrain || limit <= 0) return ds;
  return std::unique_ptr<Dataset>(new PrefixDataset(std::move(*ds), limit));
}

}  // namespace convnextv2::data
