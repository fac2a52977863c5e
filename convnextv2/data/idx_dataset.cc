#include "convnextv2/data/idx_dataset.h"

#include <zlib.h>

#include <filesystem>

#include "absl/base/attributes.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/data/class_names.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {
namespace {

// Closes a gzFile on scope exit.
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};

}  // namespace

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path, int expected_dims) {
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open IDX file ", path));
  }
  // gzread reads plain files unchanged, so .gz and uncompressed files take the same path.
  auto read_exact = [&](void* buffer, size_t n) -> bool {
    size_t done = 0;
    while (done < n) {
      const int r = gzread(file.get(), static_cast<char*>(buffer) + done,
                           static_cast<unsigned>(std::min<size_t>(n - done, 1 << 30)));
      if (r <= 0) return false;
      done += static_cast<size_t>(r);
    }
    return true;
  };
  unsigned char magic[4];
  if (!read_exact(magic, 4)) {
    return absl::DataLossError(absl::StrCat(path, ": too short for an IDX header"));
  }
  // Magic: two zero bytes, type 0x08 (unsigned byte), number of dimensions.
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] != expected_dims) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": not an IDX file of unsigned bytes with ", expected_dims,
        " dimensions (magic bytes ", magic[0], " ", magic[1], " ", magic[2], " ", magic[3], ")"));
  }
  IdxArray array;
  size_t total = 1;
  for (int i = 0; i < expected_dims; ++i) {
    unsigned char b[4];
    if (!read_exact(b, 4)) {
      return absl::DataLossError(absl::StrCat(path, ": truncated IDX header"));
    }
    const int dim = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
    if (dim <= 0) return absl::InvalidArgumentError(absl::StrCat(path, ": dimension ", i, " is ", dim));
    array.dims.push_back(dim);
    total *= static_cast<size_t>(dim);
  }
  array.data.resize(total);
  if (!read_exact(array.data.data(), total)) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: the header promises ", total,
                                            " bytes of data"));
  }
  return array;
}

absl::StatusOr<std::unique_ptr<IdxDataset>> IdxDataset::Open(const std::string& dir,
                                                             Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  auto locate = [&](const std::string& stem) -> absl::StatusOr<std::string> {
    for (const std::string& name : {stem + ".gz", stem}) {
      const std::string path = (std::filesystem::path(dir) / name).string();
      if (std::filesystem::exists(path)) return path;
    }
    return absl::NotFoundError(absl::StrCat("IDX dataset: neither ", stem, ".gz nor ", stem,
                                            " in ", dir));
  };
  absl::StatusOr<std::string> images_path = locate(prefix + "-images-idx3-ubyte");
  CONVNEXTV2_RETURN_IF_ERROR(images_path);
  absl::StatusOr<std::string> labels_path = locate(prefix + "-labels-idx1-ubyte");
  CONVNEXTV2_RETURN_IF_ERROR(labels_path);

  absl::StatusOr<IdxArray> images = ReadIdxFile(*images_path, 3);
  CONVNEXTV2_RETURN_IF_ERROR(images);
  absl::StatusOr<IdxArray> labels = ReadIdxFile(*labels_path, 1);
  CONVNEXTV2_RETURN_IF_ERROR(labels);
  if (images->dims[0] != labels->dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(*images_path, " has ", images->dims[0],
                                                   " images but ", *labels_path, " has ",
                                                   labels->dims[0], " labels"));
  }
  auto ds = std::unique_ptr<IdxDataset>(new IdxDataset);
  ds->rows_ = images->dims[1];
  ds->cols_ = images->dims[2];
  ds->pixels_ = std::move(images->data);
  ds->labels_ = std::move(labels->data);
  int max_label = 0;
  for (uint8_t l : ds->labels_) max_label = std::max<int>(max_label, l);
  ds->num_classes_ = max_label + 1;
  ds->description_ = absl::StrCat("IDX ", dir, " ", prefix, ": ", ds->labels_.size(), " images ",
                                  ds->rows_, "x", ds->cols_, ", ", ds->num_classes_, " classes");
  ds->fashion_ = absl::StrContains(absl::AsciiStrToLower(dir), "fashion");
  return ds;
}

std::vector<std::string> IdxDataset::class_names() const {
  if (fashion_ && num_classes_ == 10) return FashionMnistClassNames();
  return NumberedClassNames(num_classes_);
}

absl::StatusOr<Example> IdxDataset::Get(int64_t index) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(absl::StrCat("IDX index ", index, " outside [0, ", size(), ")"));
  }
  Example ex;
  ex.label = labels_[index];
  ex.image.height = rows_;
  ex.image.width = cols_;
  ex.image.channels = 1;
  const size_t n = static_cast<size_t>(rows_) * cols_;
  ex.image.pixels.assign(pixels_.begin() + index * n, pixels_.begin() + (index + 1) * n);
  return ex;
}

namespace {

absl::StatusOr<std::unique_ptr<Dataset>> OpenIdx(const ExperimentConfig& config, Split split,
                                                 Labels labels) {
  absl::StatusOr<std::unique_ptr<IdxDataset>> ds =
      IdxDataset::Open(config.data().data_path(), split);
  CONVNEXTV2_RETURN_IF_ERROR(ds);
  return std::unique_ptr<Dataset>(std::move(*ds));
}

}  // namespace

ABSL_CONST_INIT const DatasetEntry kIdxDataset = {
    "IDX", /*reads_files=*/true, /*small_images=*/true, /*check=*/nullptr, OpenIdx,
    /*classes_in_files=*/nullptr};

}  // namespace convnextv2::data
