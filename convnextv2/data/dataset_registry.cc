#include "convnextv2/data/dataset_registry.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/data/cifar_dataset.h"
#include "convnextv2/data/idx_dataset.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/synthetic_dataset.h"

namespace convnextv2::data {

const std::vector<const DatasetEntry*>& RegisteredDatasets() {
  static const auto* const kDatasets = new std::vector<const DatasetEntry*>{
      &kImageNetDataset, &kImageFolderDataset, &kCifarDataset, &kIdxDataset,
      &kSyntheticDataset,
  };
  return *kDatasets;
}

std::string DatasetNamesList() {
  return absl::StrJoin(RegisteredDatasets(), ", ",
                       [](std::string* out, const DatasetEntry* entry) {
                         absl::StrAppend(out, entry->name);
                       });
}

absl::StatusOr<const DatasetEntry*> FindDataset(absl::string_view name) {
  for (const DatasetEntry* entry : RegisteredDatasets()) {
    if (entry->name == name) return entry;
  }
  return absl::NotFoundError(
      absl::StrCat("'", name, "' is not one of: ", DatasetNamesList()));
}

}  // namespace convnextv2::data
