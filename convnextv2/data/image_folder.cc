#include "convnextv2/data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/base/attributes.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/progress.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {

namespace fs = std::filesystem;

bool HasImageExtension(absl::string_view path) {
  const size_t dot = path.rfind('.');
  if (dot == absl::string_view::npos) return false;
  const std::string ext = absl::AsciiStrToLower(path.substr(dot));
  for (const char* known : {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif",
                            ".tiff"}) {
    if (ext == known) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<ImageFolder>> ImageFolder::Open(
    const std::string& root, const util::Progress::Options& progress_options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "image folder '", root, "' ", fs::exists(root, ec) ? "is not a directory" : "does not exist"));
  }
  auto ds = std::unique_ptr<ImageFolder>(new ImageFolder());
  ds->root_ = root;
  for (fs::directory_iterator it(root, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) ds->classes_.push_back(it->path().filename().string());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list '", root, "': ", ec.message()));
  if (ds->classes_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image folder '", root, "' has no class subfolders (expected one folder per class)"));
  }
  std::sort(ds->classes_.begin(), ds->classes_.end());
  // ImageNet's 1.28 M files over a network filesystem take minutes to list: say how far it is
  // (silent when it takes under 10 s).
  util::Progress progress(absl::StrCat("indexing ", root),
                          static_cast<int64_t>(ds->classes_.size()), progress_options);
  for (size_t c = 0; c < ds->classes_.size(); ++c) {
    const fs::path dir = fs::path(root) / ds->classes_[c];
    std::vector<std::string> files;
    for (fs::recursive_directory_iterator
             it(dir, fs::directory_options::follow_directory_symlink, ec), end;
         !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && HasImageExtension(it->path().filename().string())) {
        files.push_back(it->path().string());
      }
    }
    if (ec) {
      return absl::NotFoundError(absl::StrCat("cannot list '", dir.string(), "': ", ec.message()));
    }
    if (files.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "class folder '", dir.string(),
          "' has no image files (jpg, jpeg, png, bmp, webp, ppm, pgm, tif, tiff)"));
    }
    std::sort(files.begin(), files.end());
    for (std::string& f : files) {
      ds->files_.push_back(std::move(f));
      ds->labels_.push_back(static_cast<int64_t>(c));
    }
    progress.Update(static_cast<int64_t>(c) + 1,
                    absl::StrCat(ds->files_.size(), " images, class folders"));
  }
  progress.Finish(absl::StrCat(ds->files_.size(), " images"));
  return ds;
}

absl::StatusOr<Example> ImageFolder::Get(int64_t index) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(absl::StrCat("index ", index, " outside [0, ", size(), ") of ",
                                              root_));
  }
  Example ex;
  absl::StatusOr<std::string> bytes = util::ReadFile(files_[index]);
  CONVNEXTV2_RETURN_IF_ERROR(bytes);
  // An empty `encoded` would mean "an image in memory" to the transforms.
  if (bytes->empty()) {
    return absl::DataLossError(absl::StrCat(files_[index], ": empty file (0 bytes), not an image"));
  }
  ex.encoded = std::move(*bytes);
  ex.path = files_[index];
  ex.label = labels_[index];
  return ex;
}

std::string ImageFolder::Describe() const {
  return absl::StrCat("ImageFolder ", root_, ": ", size(), " images, ", num_classes(),
                      " classes");
}

namespace {

// Folder datasets: the class count must be nb_classes (as the official script asserts), and the
// evaluation classes must be the training ones, or labels would silently mean different things.
absl::StatusOr<std::unique_ptr<Dataset>> OpenFolder(const ExperimentConfig& config,
                                                    const std::string& root,
                                                    const std::string& train_root,
                                                    Labels labels) {
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  CONVNEXTV2_RETURN_IF_ERROR(ds);
  if (labels == Labels::kUsed) {
    CONVNEXTV2_RETURN_IF_ERROR(CheckClassCount(
        config.model().nb_classes(), (*ds)->num_classes(), ClassCount::kExact,
        absl::StrCat("image folder '", root, "' has ", (*ds)->num_classes(), " class folders")));
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

absl::StatusOr<std::unique_ptr<Dataset>> OpenImageNet(const ExperimentConfig& config, Split split,
                                                      Labels labels) {
  const std::string train_dir = (fs::path(config.data().data_path()) / "train").string();
  if (split == Split::kTrain) return OpenFolder(config, train_dir, "", labels);
  const std::string val_dir = (fs::path(config.data().data_path()) / "val").string();
  return OpenFolder(config, val_dir, train_dir, labels);
}

constexpr char kNoEvalFolder[] =
    "data.eval_data_path: empty; data_set image_folder evaluates on that folder "
    "(or set eval.disable_eval)";

absl::StatusOr<std::unique_ptr<Dataset>> OpenImageFolder(const ExperimentConfig& config,
                                                         Split split, Labels labels) {
  const DataConfig& d = config.data();
  if (split == Split::kTrain) return OpenFolder(config, d.data_path(), "", labels);
  if (d.eval_data_path().empty()) {
    return absl::InvalidArgumentError(kNoEvalFolder);
  }
  return OpenFolder(config, d.eval_data_path(), d.data_path(), labels);
}

// Fine-tuning evaluates on eval_data_path (main_finetune.py's --eval_data_path).
void CheckImageFolder(const ExperimentConfig& config, config::Checks& checks) {
  const bool evaluates = !checks.pretrain() && (!config.eval().disable_eval() || config.eval().eval());
  checks.Require(!evaluates || !config.data().eval_data_path().empty(), kNoEvalFolder);
}

}  // namespace

ABSL_CONST_INIT const DatasetEntry kImageNetDataset = {
    "IMNET", /*reads_files=*/true, /*small_images=*/false, /*check=*/nullptr, OpenImageNet,
    /*classes_in_files=*/nullptr};

ABSL_CONST_INIT const DatasetEntry kImageFolderDataset = {
    "image_folder", /*reads_files=*/true, /*small_images=*/false, CheckImageFolder,
    OpenImageFolder, /*classes_in_files=*/nullptr};

}  // namespace convnextv2::data
