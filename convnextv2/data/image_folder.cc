#include "convnextv2/data/image_folder.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
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

}  // namespace convnextv2::data
