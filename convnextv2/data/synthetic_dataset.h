// A deterministic synthetic dataset for tests and smoke runs: image i has label i % classes and
// a class-dependent color and stripe pattern under per-image noise, so a small model learns it
// in a few steps. Image i is a pure function of (seed, i).
#ifndef CONVNEXTV2_DATA_SYNTHETIC_DATASET_H_
#define CONVNEXTV2_DATA_SYNTHETIC_DATASET_H_

#include <cstdint>
#include <string>

#include "convnextv2/data/dataset.h"

namespace convnextv2::data {

struct DatasetEntry;
// Registry entry (dataset_registry.h): data_set synthetic, data.synthetic_train_size and
// synthetic_eval_size images generated from train.seed.
extern const DatasetEntry kSyntheticDataset;

class SyntheticDataset : public Dataset {
 public:
  SyntheticDataset(int64_t size, int num_classes, int image_size, uint64_t seed);
  int64_t size() const override { return size_; }
  int num_classes() const override { return num_classes_; }
  absl::StatusOr<Example> Get(int64_t index) const override;
  std::string Describe() const override;

 private:
  int64_t size_;
  int num_classes_;
  int image_size_;
  uint64_t seed_;
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_SYNTHETIC_DATASET_H_
