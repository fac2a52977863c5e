// The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).
//
//   auto ds = IdxDataset::Open("/usr/share/datasets/fashion-mnist", Split::kTrain);
//
// Reads <dir>/train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (t10k-* for eval)
// into memory (60000 28x28 images are 47 MB).
#ifndef CONVNEXTV2_DATA_IDX_DATASET_H_
#define CONVNEXTV2_DATA_IDX_DATASET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/dataset.h"

namespace convnextv2::data {

struct DatasetEntry;
// Registry entry (dataset_registry.h): data_set IDX, (Fashion-)MNIST files in data_path.
extern const DatasetEntry kIdxDataset;

class IdxDataset : public Dataset {
 public:
  // Errors name the file: missing, not IDX (bad magic), truncated, images and labels disagreeing,
  // labels outside [0, 255].
  static absl::StatusOr<std::unique_ptr<IdxDataset>> Open(const std::string& dir, Split split);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int num_classes() const override { return num_classes_; }
  // Fashion-MNIST's names when the folder's path says "fashion" (any case) and it has 10
  // classes; "class_0" ... otherwise (MNIST's digits).
  std::vector<std::string> class_names() const override;
  absl::StatusOr<Example> Get(int64_t index) const override;
  std::string Describe() const override { return description_; }

 private:
  IdxDataset() = default;
  int rows_ = 0, cols_ = 0, num_classes_ = 0;
  std::vector<uint8_t> pixels_;
  std::vector<uint8_t> labels_;
  std::string description_;
  bool fashion_ = false;
};

// Reads a whole IDX file (gzip or plain) at `path`; exposed for tests.
struct IdxArray {
  std::vector<int> dims;
  std::vector<uint8_t> data;
};
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path, int expected_dims);

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_IDX_DATASET_H_
