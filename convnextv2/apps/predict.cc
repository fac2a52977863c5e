#include "convnextv2/apps/predict.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/apps/inference.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/config/config.h"
#include "convnextv2/data/class_names.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::apps {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::vector<std::string>> ImagesUnder(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink,
                                           ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file() && data::HasImageExtension(it->path().string())) {
      files.push_back(it->path().string());
    }
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list folder ", dir, ": ", ec.message()));
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "folder ", dir, " holds no images (jpg, jpeg, png, bmp, webp, ppm, pgm, tif, tiff)"));
  }
  std::sort(files.begin(), files.end());
  return files;
}

// What the file says about itself: the header of this toolkit's checkpoints (model, config,
// class names), nothing for a PyTorch state dict.
struct Source {
  std::string model;
  ExperimentConfig config;
  std::vector<std::string> class_names;
};

absl::StatusOr<Source> ReadSource(const PredictOptions& o) {
  Source source;
  if (!checkpoint::LooksLikeCheckpoint(o.resume)) {
    if (o.model.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          o.resume, " has no convnextv2 header naming its model: say which with --model "
          "(e.g. convnextv2_tiny)"));
    }
    source.model = o.model;
    return source;  // the default config: the official evaluation transform at 224
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(const checkpoint::CheckpointHeader header,
                              checkpoint::ReadHeader(o.resume));
  if (absl::StartsWith(header.model(), "fcmae_")) {
    return absl::InvalidArgumentError(absl::StrCat(
        o.resume, " is a pre-training checkpoint (", header.model(), "), not a classifier: "
        "fine-tune it first (finetune --finetune ", o.resume, ")"));
  }
  if (!o.model.empty() && o.model != header.model()) {
    return absl::InvalidArgumentError(absl::StrCat(o.resume, " is a ", header.model(),
                                                   " checkpoint, not ", o.model, " (--model)"));
  }
  source.model = header.model();
  if (!header.config_text().empty()) {
    CONVNEXTV2_ASSIGN_OR_RETURN(source.config,
                                config::ParseText(header.config_text(), o.resume + " (config)"));
  }
  source.class_names.assign(header.class_names().begin(), header.class_names().end());
  return source;
}

void NameClasses(const std::vector<std::string>& recorded, int64_t classes, Classifier* c) {
  if (!recorded.empty() && static_cast<int64_t>(recorded.size()) == classes) {
    c->class_names = recorded;
    c->names_from = "checkpoint";
  } else if (classes == 1000) {
    c->class_names = data::ImageNet1kClassNames();
    c->names_from = "ImageNet-1k";
  } else {
    c->class_names = data::NumberedClassNames(static_cast<int>(classes));
    c->names_from = "numbered";
  }
}

absl::StatusOr<at::Tensor> LoadBatch(const std::vector<std::string>& paths, size_t begin,
                                     size_t end, const data::Transform& transform) {
  std::vector<at::Tensor> images;
  for (size_t i = begin; i < end; ++i) {
    data::Example example;
    CONVNEXTV2_ASSIGN_OR_RETURN(example.encoded, util::ReadFile(paths[i]));
    example.path = paths[i];
    data::SampleRng rng(0);  // the evaluation transform draws nothing
    CONVNEXTV2_ASSIGN_OR_RETURN(at::Tensor x, transform.ApplyExample(example, rng));
    images.push_back(std::move(x));
  }
  return at::stack(images);
}

std::vector<Prediction> TopK(const at::Tensor& logits, const std::vector<std::string>& paths,
                             size_t begin, const Classifier& c, int k) {
  const at::Tensor probs = at::softmax(logits.to(at::kDouble), 1);
  const auto [values, indices] = probs.topk(std::min<int64_t>(k, probs.size(1)), 1);
  std::vector<Prediction> out;
  for (int64_t i = 0; i < probs.size(0); ++i) {
    Prediction p;
    p.path = paths[begin + i];
    for (int64_t j = 0; j < values.size(1); ++j) {
      const int64_t index = indices[i][j].item<int64_t>();
      p.top.push_back({index, c.class_names[index], values[i][j].item<double>()});
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::string JsonLine(const Prediction& p) {
  nlohmann::json top = nlohmann::json::array();
  for (const ClassScore& s : p.top) {
    top.push_back({{"index", s.index}, {"name", s.name}, {"probability", s.probability}});
  }
  return nlohmann::json{{"path", p.path}, {"top", top}}.dump();
}

void Print(const Prediction& p, std::ostream& out) {
  out << p.path << "\n";
  for (const ClassScore& s : p.top) {
    out << absl::StrFormat("  %6.2f%%  %s (%d)\n", 100 * s.probability, s.name, s.index);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListImages(const std::vector<std::string>& inputs) {
  if (inputs.empty()) return absl::InvalidArgumentError("no images or folders given");
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      CONVNEXTV2_ASSIGN_OR_RETURN(std::vector<std::string> under, ImagesUnder(input));
      files.insert(files.end(), under.begin(), under.end());
    } else if (fs::exists(input, ec)) {
      files.push_back(input);
    } else {
      return absl::NotFoundError(absl::StrCat("no such image or folder: ", input));
    }
  }
  return files;
}

absl::StatusOr<Classifier> LoadClassifier(const PredictOptions& o) {
  if (!fs::exists(o.resume)) return absl::NotFoundError("no such checkpoint: " + o.resume);
  CONVNEXTV2_ASSIGN_OR_RETURN(Source source, ReadSource(o));
  // Any file --finetune takes (this toolkit's checkpoints, .pth/.bin, .safetensors, a Hugging
  // Face folder; official, timm or transformers names), loaded strictly.
  absl::StatusOr<checkpoint::InferenceModel> loaded =
      checkpoint::LoadInferenceModel(o.resume, source.model, o.model_key);
  if (!loaded.ok()) {
    // A file of another variant or with weights missing: say it is not the model's weights.
    const absl::StatusCode code = loaded.status().code();
    if (source.model.empty() || (code != absl::StatusCode::kFailedPrecondition &&
                                 code != absl::StatusCode::kInvalidArgument)) {
      return loaded.status();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("not ", source.model, " weights: ", loaded.status().message()));
  }
  for (const std::string& line : checkpoint::DescribeLoad(o.resume, loaded->report)) {
    LOG(INFO) << line;
  }
  Classifier c;
  c.model_name = loaded->variant;
  c.model = loaded->model;
  const int64_t classes = c.model->named_parameters()["head.weight"].size(0);
  if (source.class_names.empty()) source.class_names = loaded->class_names;  // id2label
  NameClasses(source.class_names, classes, &c);
  CONVNEXTV2_ASSIGN_OR_RETURN(c.transform, data::MakeTransform(source.config, data::Split::kEval));
  return c;
}

absl::StatusOr<std::vector<Prediction>> Predict(const PredictOptions& o, std::ostream* out) {
  if (o.batch_size < 1 || o.top_k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("batch size and top-k must be >= 1, got ",
                                                   o.batch_size, " and ", o.top_k));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(const std::vector<std::string> paths, ListImages(o.inputs));
  CONVNEXTV2_ASSIGN_OR_RETURN(Classifier c, LoadClassifier(o));
  if (out != nullptr) {
    *out << c.model_name << " from " << o.resume << ", " << c.class_names.size()
         << " classes (names: " << c.names_from << "), " << paths.size() << " image(s)\n";
  }
  std::vector<Prediction> all;
  std::string lines;
  for (size_t begin = 0; begin < paths.size(); begin += o.batch_size) {
    const size_t end = std::min(paths.size(), begin + o.batch_size);
    CONVNEXTV2_ASSIGN_OR_RETURN(const at::Tensor images, LoadBatch(paths, begin, end, *c.transform));
    const at::Tensor logits = InferenceLogits(c.model, images, o.bf16);
    for (Prediction& p : TopK(logits, paths, begin, c, o.top_k)) {
      if (out != nullptr) Print(p, *out);
      absl::StrAppend(&lines, JsonLine(p), "\n");
      all.push_back(std::move(p));
    }
  }
  if (!o.output.empty()) CONVNEXTV2_RETURN_IF_ERROR(util::WriteFileAtomically(o.output, lines));
  return all;
}

}  // namespace convnextv2::apps
