// The registry of datasets, by their official --data_set names (main_finetune.py's choices
// IMNET, image_folder and CIFAR, plus IDX and synthetic). Each dataset's file defines its entry;
// the registration is one line of RegisteredDatasets() in dataset_registry.cc. Validation, path
// checks, the choice of transform and OpenDataset all read the entry, so adding a dataset touches
// its own file, that line and its test.
//
//   absl::StatusOr<const DatasetEntry*> entry = FindDataset("CIFAR");
//   if ((*entry)->reads_files) ... (*entry)->open(config, Split::kTrain, Labels::kUsed);
#ifndef CONVNEXTV2_DATA_DATASET_REGISTRY_H_
#define CONVNEXTV2_DATA_DATASET_REGISTRY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/config/checks.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::data {

struct DatasetEntry {
  // The data.data_set value, as the official scripts spell it.
  absl::string_view name;
  // Whether it reads data.data_path (false: generated in memory).
  bool reads_files;
  // 28-32 pixel images (Fashion-MNIST, synthetic): the small-image transform (centred on an
  // input_size canvas, flips only) instead of the ImageNet crops and RandAugment.
  bool small_images;
  // Checks of what only this dataset requires, for config::Validate; nullptr: none.
  void (*check)(const ExperimentConfig& config, config::Checks& checks);
  // The dataset of `split` (whole; OpenDataset applies data.max_train_images).
  absl::StatusOr<std::unique_ptr<Dataset>> (*open)(const ExperimentConfig& config, Split split,
                                                   Labels labels);
  // The class count the files in data_path hold, for datasets whose official build_dataset sets
  // nb_classes from the data (CIFAR); nullptr for the others.
  absl::StatusOr<int> (*classes_in_files)(const std::string& data_path);
};

// Every registered dataset, in the order --help and errors list them.
const std::vector<const DatasetEntry*>& RegisteredDatasets();

// The entry called `name` (case-sensitive, as argparse's choices); NotFound "'x' is not one of:
// IMNET, image_folder, ..." otherwise.
absl::StatusOr<const DatasetEntry*> FindDataset(absl::string_view name);

// "IMNET, image_folder, CIFAR, IDX, synthetic".
std::string DatasetNamesList();

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_DATASET_REGISTRY_H_
