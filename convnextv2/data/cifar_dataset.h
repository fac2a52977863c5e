// The CIFAR-10 and CIFAR-100 binary formats (https://www.cs.toronto.edu/~kriz/cifar.html).
//
//   auto ds = CifarDataset::Open("/data/cifar-100-binary", Split::kTrain);
//
// The folder holds either CIFAR-100's train.bin/test.bin (records: coarse label, fine label,
// 3072 bytes; the fine label, 100 classes, is used) or CIFAR-10's data_batch_1..5.bin and
// test_batch.bin (records: label, 3072 bytes; 10 classes). Pixels are stored planar (1024 R,
// 1024 G, 1024 B) at 32x32 and are held in memory (50000 images: 150 MB).
#ifndef CONVNEXTV2_DATA_CIFAR_DATASET_H_
#define CONVNEXTV2_DATA_CIFAR_DATASET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/dataset.h"

namespace convnextv2::data {

struct DatasetEntry;
// Registry entry (dataset_registry.h): data_set CIFAR; fine-tuning takes nb_classes from the files.
extern const DatasetEntry kCifarDataset;

// The class count of the CIFAR files in `dir`, from which layout is there (nothing is read):
// 100 for CIFAR-100 (train.bin or test.bin), 10 for CIFAR-10 (data_batch_1.bin or
// test_batch.bin); NotFound naming the folder and both layouts otherwise.
absl::StatusOr<int> CifarClassCount(const std::string& dir);

class CifarDataset : public Dataset {
 public:
  // Errors name the folder/file: neither layout found, a file whose size is not a whole number
  // of records, a label out of range.
  static absl::StatusOr<std::unique_ptr<CifarDataset>> Open(const std::string& dir, Split split);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int num_classes() const override { return num_classes_; }
  // The official names: CIFAR-10's, or CIFAR-100's fine labels.
  std::vector<std::string> class_names() const override;
  absl::StatusOr<Example> Get(int64_t index) const override;  // 32x32x3 RGB
  std::string Describe() const override { return description_; }

 private:
  CifarDataset() = default;
  int num_classes_ = 0;
  std::vector<uint8_t> pixels_;  // HWC, 3072 bytes per image
  std::vector<uint8_t> labels_;
  std::string description_;
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_CIFAR_DATASET_H_
