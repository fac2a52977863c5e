// Datasets: indexable collections of labelled images.
//
//   absl::StatusOr<std::unique_ptr<Dataset>> train = OpenDataset(config, Split::kTrain);
//   absl::StatusOr<Example> ex = (*train)->Get(17);   // ex->image: uint8 (H, W, C)
#ifndef CONVNEXTV2_DATA_DATASET_H_
#define CONVNEXTV2_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::data {

enum class Split { kTrain, kEval };

// An image as stored: 8-bit, height x width x channels (1 or 3), row-major.
struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

struct Example {
  Image image;
  int64_t label = 0;
  // Datasets of image files leave `image` empty and hand over the file's bytes, so the
  // transform can decode at the size it needs (JPEG DCT scaling); see image_decode.h.
  std::string encoded;
  // The file the example came from (for errors and warnings); empty for in-memory sets.
  std::string path;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int num_classes() const = 0;
  // The classes' names, index = label (recorded in runs and checkpoints for `predict`); by
  // default "class_0" ... (NumberedClassNames).
  virtual std::vector<std::string> class_names() const;
  // Thread-safe. An unreadable or corrupt sample is an error naming it.
  virtual absl::StatusOr<Example> Get(int64_t index) const = 0;
  // One line for the log, e.g. "IDX /usr/share/datasets/fashion-mnist train: 60000 images".
  virtual std::string Describe() const = 0;
};

// The first `size` images of `base` (all when it has fewer).
class PrefixDataset : public Dataset {
 public:
  PrefixDataset(std::unique_ptr<Dataset> base, int64_t size);
  int64_t size() const override { return size_; }
  int num_classes() const override { return base_->num_classes(); }
  std::vector<std::string> class_names() const override { return base_->class_names(); }
  absl::StatusOr<Example> Get(int64_t index) const override { return base_->Get(index); }
  std::string Describe() const override;

 private:
  std::unique_ptr<Dataset> base_;
  int64_t size_;
};

// Whether the run uses the labels. Pre-training does not, so its image folders may hold any
// number of class folders (main_pretrain.py's ImageFolder checks nothing either).
enum class Labels { kUsed, kUnused };

// How a dataset's class count must relate to a head of model.nb_classes outputs.
enum class ClassCount {
  kExact,   // its classes give the labels their meaning (image folders, CIFAR), as the official
            // script asserts: the counts match
  kAtMost,  // its labels are fixed (IDX, synthetic): the head covers them, extra outputs unused
};

// The one class-count check (the datasets' open functions and OpenDataset call it): OK when
// `classes` fits `nb_classes` under `rule`, else InvalidArgument "model.nb_classes is <n> but
// <holds>", `holds` saying what the data has ("image folder 'x' has 2 class folders").
absl::Status CheckClassCount(int nb_classes, int classes, ClassCount rule,
                             absl::string_view holds);

// The dataset of `config.data` for `split` (the training split cut to data.max_train_images
// when that is set): IMNET (data_path/train, data_path/val), image_folder
// (data_path, eval_data_path), CIFAR (binary batches), IDX or synthetic. With kUsed, folder
// and CIFAR datasets must have exactly model.nb_classes classes (for CIFAR the binaries set it
// from the files first: config::ResolveDataClasses), the eval classes must be the train
// classes, and any training set's labels must be below model.nb_classes.
absl::StatusOr<std::unique_ptr<Dataset>> OpenDataset(const ExperimentConfig& config, Split split,
                                                     Labels labels = Labels::kUsed);

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_DATASET_H_
