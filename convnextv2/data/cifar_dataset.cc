#include "convnextv2/data/cifar_dataset.h"

#include <filesystem>

#include "absl/base/attributes.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/data/class_names.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {

namespace fs = std::filesystem;

absl::StatusOr<int> CifarClassCount(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "train.bin", ec) || fs::exists(fs::path(dir) / "test.bin", ec)) {
    return 100;
  }
  if (fs::exists(fs::path(dir) / "data_batch_1.bin", ec) ||
      fs::exists(fs::path(dir) / "test_batch.bin", ec)) {
    return 10;
  }
  return absl::NotFoundError(absl::StrCat(
      "CIFAR folder '", dir,
      "' holds neither CIFAR-100 (train.bin, test.bin) nor CIFAR-10 (data_batch_1..5.bin, "
      "test_batch.bin) binary files"));
}

absl::StatusOr<std::unique_ptr<CifarDataset>> CifarDataset::Open(const std::string& dir,
                                                                 Split split) {
  const bool train = split == Split::kTrain;
  absl::StatusOr<int> classes = CifarClassCount(dir);
  CONVNEXTV2_RETURN_IF_ERROR(classes);
  auto ds = std::unique_ptr<CifarDataset>(new CifarDataset());
  ds->num_classes_ = *classes;
  std::vector<std::string> files;
  int label_bytes = 0;
  if (*classes == 100) {
    files = {(fs::path(dir) / (train ? "train.bin" : "test.bin")).string()};
    label_bytes = 2;
  } else {
    if (train) {
      for (int i = 1; i <= 5; ++i) {
        files.push_back((fs::path(dir) / absl::StrCat("data_batch_", i, ".bin")).string());
      }
    } else {
      files = {(fs::path(dir) / "test_batch.bin").string()};
    }
    label_bytes = 1;
  }
  constexpr int kPixels = 32 * 32 * 3;
  const int record = label_bytes + kPixels;
  for (const std::string& file : files) {
    absl::StatusOr<std::string> bytes = util::ReadFile(file);
    CONVNEXTV2_RETURN_IF_ERROR(bytes);
    if (bytes->empty() || bytes->size() % record != 0) {
      return absl::DataLossError(absl::StrCat("CIFAR file '", file, "' has ", bytes->size(),
                                              " bytes, not a whole number of ", record,
                                              "-byte records (truncated or not CIFAR-",
                                              ds->num_classes_, ")"));
    }
    const size_t n = bytes->size() / record;
    const size_t base = ds->labels_.size();
    ds->labels_.resize(base + n);
    ds->pixels_.resize((base + n) * kPixels);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* r = reinterpret_cast<const uint8_t*>(bytes->data()) + i * record;
      const uint8_t label = r[label_bytes - 1];  // CIFAR-100: the fine label
      if (label >= ds->num_classes_) {
        return absl::DataLossError(absl::StrCat("CIFAR file '", file, "' record ", i, ": label ",
                                                label, " outside [0, ", ds->num_classes_, ")"));
      }
      ds->labels_[base + i] = label;
      uint8_t* out = ds->pixels_.data() + (base + i) * kPixels;
      const uint8_t* planes = r + label_bytes;
      for (int p = 0; p < 1024; ++p) {
        for (int c = 0; c < 3; ++c) out[3 * p + c] = planes[c * 1024 + p];
      }
    }
  }
  ds->description_ = absl::StrCat("CIFAR-", ds->num_classes_, " ", dir, " ",
                                  train ? "train" : "test", ": ", ds->labels_.size(), " images");
  return ds;
}

std::vector<std::string> CifarDataset::class_names() const {
  return num_classes_ == 100 ? Cifar100ClassNames() : Cifar10ClassNames();
}

absl::StatusOr<Example> CifarDataset::Get(int64_t index) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(absl::StrCat("index ", index, " outside [0, ", size(), ")"));
  }
  Example ex;
  ex.image.height = ex.image.width = 32;
  ex.image.channels = 3;
  ex.image.pixels.assign(pixels_.begin() + index * 3072, pixels_.begin() + (index + 1) * 3072);
  ex.label = labels_[index];
  return ex;
}

namespace {

absl::StatusOr<std::unique_ptr<Dataset>> OpenCifar(const ExperimentConfig& config, Split split,
                                                   Labels labels) {
  const std::string& dir = config.data().data_path();
  absl::StatusOr<std::unique_ptr<CifarDataset>> ds = CifarDataset::Open(dir, split);
  CONVNEXTV2_RETURN_IF_ERROR(ds);
  // The binaries take nb_classes from the files (config::ResolveDataClasses), as the official
  // build_dataset does; a config that bypassed that must not train a wrong head.
  if (labels == Labels::kUsed) {
    CONVNEXTV2_RETURN_IF_ERROR(CheckClassCount(
        config.model().nb_classes(), (*ds)->num_classes(), ClassCount::kExact,
        absl::StrCat("CIFAR folder '", dir, "' holds CIFAR-", (*ds)->num_classes(), " (",
                     (*ds)->num_classes(),
                     " classes); the binaries set it from the files (config::ResolveDataClasses)")));
  }
  return std::unique_ptr<Dataset>(std::move(*ds));
}

}  // namespace

ABSL_CONST_INIT const DatasetEntry kCifarDataset = {
    "CIFAR", /*reads_files=*/true, /*small_images=*/false, /*check=*/nullptr, OpenCifar,
    CifarClassCount};

}  // namespace convnextv2::data
