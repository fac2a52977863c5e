// torchvision's ImageFolder: one subfolder per class, classes sorted by name, image files found
// recursively under each class folder (sorted by path).
//
//   absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open("/data/imagenet/train");
//   (*ds)->classes();                 // {"n01440764", ...}, index = label
//   absl::StatusOr<Example> ex = (*ds)->Get(0);   // ex->encoded holds the file's bytes
#ifndef CONVNEXTV2_DATA_IMAGE_FOLDER_H_
#define CONVNEXTV2_DATA_IMAGE_FOLDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/util/progress.h"

namespace convnextv2::data {

struct DatasetEntry;
// Registry entries (dataset_registry.h): IMNET reads data_path/train and data_path/val;
// image_folder reads data_path and evaluates on eval_data_path. Class folders must match
// model.nb_classes when labels are used, and the evaluation classes must be the training ones.
extern const DatasetEntry kImageNetDataset;
extern const DatasetEntry kImageFolderDataset;

// Extensions (lower case, with the dot) counted as images: jpg jpeg png bmp webp ppm pgm tif
// tiff, matched case-insensitively.
bool HasImageExtension(absl::string_view path);

class ImageFolder : public Dataset {
 public:
  // Fails (NotFound / InvalidArgument, naming the folder) when the root is missing, has no class
  // subfolders, or a class folder has no image files.
  // Listing a large tree (ImageNet: 1.28 M files, often over a network filesystem) reports
  // progress per class folder through util::Progress (stderr by default; silent when quick).
  static absl::StatusOr<std::unique_ptr<ImageFolder>> Open(
      const std::string& root, const util::Progress::Options& progress);
  static absl::StatusOr<std::unique_ptr<ImageFolder>> Open(const std::string& root) {
    return Open(root, util::Progress::Options());
  }

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int num_classes() const override { return static_cast<int>(classes_.size()); }
  std::vector<std::string> class_names() const override { return classes_; }
  // Reads the file; the image stays encoded (Example::encoded) for the transform to decode.
  absl::StatusOr<Example> Get(int64_t index) const override;
  std::string Describe() const override;

  const std::vector<std::string>& classes() const { return classes_; }
  const std::string& path(int64_t index) const { return files_[index]; }
  int64_t label(int64_t index) const { return labels_[index]; }

 private:
  ImageFolder() = default;
  std::string root_;
  std::vector<std::string> classes_;
  std::vector<std::string> files_;
  std::vector<int64_t> labels_;
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_IMAGE_FOLDER_H_
