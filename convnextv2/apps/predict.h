// `predict`: the top classes, with their names, of images under a trained or pre-trained
// classifier, in batches.
//
//   PredictOptions o;
//   o.resume = "out/checkpoint-best.pth";
//   o.inputs = {"cat.jpg", "photos/"};          // folders are searched recursively
//   o.output = "predictions.jsonl";             // optional: one JSON object per image
//   absl::StatusOr<std::vector<Prediction>> p = Predict(o, &std::cout);
//
// Weights come through the checkpoint package's loading path (checkpoint/pretrained.h
// ReadStateDict): this toolkit's checkpoints, whose header names the model, its config (input
// size, normalization, data set: the evaluation transform is the run's own, data/transforms.h
// MakeTransform) and its classes' names; or PyTorch state dicts (the official releases), for
// which `model` names the variant and the transform is the official evaluation one (resize to
// 224 / 0.875, bicubic, center crop 224). A 1000-class head without recorded names gets
// ImageNet-1k's. Errors name what is wrong: a missing file, a corrupt image, a folder without
// images, a checkpoint of another model or without a classifier head.
#ifndef CONVNEXTV2_APPS_PREDICT_H_
#define CONVNEXTV2_APPS_PREDICT_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/models/convnextv2.h"

namespace convnextv2::apps {

struct PredictOptions {
  std::string resume;               // the weights (see the file comment)
  std::vector<std::string> inputs;  // image files and folders
  // The variant (model.model names): needed for files without a header; checked against it
  // otherwise.
  std::string model;
  std::string model_key = "model|module";  // as checkpoint.model_key
  int batch_size = 32;
  int top_k = 5;
  std::string output;  // JSON lines ("path", "top": [{"index", "name", "probability"}]); "": none
  bool bf16 = false;   // bfloat16 autocast
};

struct ClassScore {
  int64_t index = 0;
  std::string name;
  double probability = 0;
};

struct Prediction {
  std::string path;
  std::vector<ClassScore> top;  // most probable first
};

// A classifier ready for images.
struct Classifier {
  models::ConvNeXtV2 model{nullptr};
  std::string model_name;
  std::vector<std::string> class_names;  // one per output of the head
  std::unique_ptr<data::Transform> transform;
  std::string names_from;  // "checkpoint", "ImageNet-1k", "numbered"
};

// The image files that `inputs` name, in order; a folder's images (HasImageExtension) sorted by
// path. Errors: an input that does not exist, a folder without images, no inputs.
absl::StatusOr<std::vector<std::string>> ListImages(const std::vector<std::string>& inputs);

absl::StatusOr<Classifier> LoadClassifier(const PredictOptions& options);

// The top_k classes of each image; prints them to `out` (nullptr: quiet) and writes `output`.
absl::StatusOr<std::vector<Prediction>> Predict(const PredictOptions& options, std::ostream* out);

}  // namespace convnextv2::apps

#endif  // CONVNEXTV2_APPS_PREDICT_H_
