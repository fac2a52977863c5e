#include "convnextv2/data/synthetic_dataset.h"

#include <algorithm>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/data/rng.h"

namespace convnextv2::data {

SyntheticDataset::SyntheticDataset(int64_t size, int num_classes, int image_size, uint64_t seed)
    : size_(size), num_classes_(num_classes), image_size_(image_size), seed_(seed) {}

std::string SyntheticDataset::Describe() const {
  return absl::StrCat("synthetic: ", size_, " images ", image_size_, "x", image_size_, ", ",
                      num_classes_, " classes, seed ", seed_);
}

absl::StatusOr<Example> SyntheticDataset::Get(int64_t index) const {
  if (index < 0 || index >= size_) {
    return absl::OutOfRangeError(
        absl::StrCat("synthetic index ", index, " outside [0, ", size_, ")"));
  }
  Example ex;
  ex.label = index % num_classes_;
  const int k = static_cast<int>(ex.label);
  Image& im = ex.image;
  im.height = im.width = image_size_;
  im.channels = 3;
  im.pixels.resize(static_cast<size_t>(image_size_) * image_size_ * 3);
  SampleRng rng(KeyedSeed(seed_, index, 0, Purpose::kSynthetic));
  const int period = 2 + (k / 8) % 6;
  for (int y = 0; y < image_size_; ++y) {
    for (int x = 0; x < image_size_; ++x) {
      const bool stripe = ((x / period) % 2) == 0;
      for (int c = 0; c < 3; ++c) {
        const int base = 40 + 150 * (((k % 8) >> c) & 1) + (stripe ? 30 : 0);
        const int noise = static_cast<int>(rng.Below(41)) - 20;
        im.pixels[(static_cast<size_t>(y) * image_size_ + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(base + noise, 0, 255));
      }
    }
  }
  return ex;
}

namespace {

absl::StatusOr<std::unique_ptr<Dataset>> OpenSynthetic(const ExperimentConfig& config,
                                                       Split split, Labels labels) {
  const DataConfig& d = config.data();
  const int64_t size = split == Split::kTrain ? d.synthetic_train_size() : d.synthetic_eval_size();
  // Train and eval images differ (another seed) but follow the same class patterns.
  const uint64_t seed =
      static_cast<uint64_t>(config.train().seed()) * 2 + (split == Split::kEval);
  return std::unique_ptr<Dataset>(new SyntheticDataset(size, config.model().nb_classes(),
                                                       config.model().input_size(), seed));
}

}  // namespace

ABSL_CONST_INIT const DatasetEntry kSyntheticDataset = {
    "synthetic", /*reads_files=*/false, /*small_images=*/true, /*check=*/nullptr, OpenSynthetic,
    /*classes_in_files=*/nullptr};

}  // namespace convnextv2::data
