#include "convnextv2/checkpoint/hf_folder.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/checkpoint/safetensors.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

absl::StatusOr<std::array<int64_t, 4>> FourNumbers(const Json& config, const char* field,
                                                   const std::string& path) {
  const Json v = config.value(field, Json());
  std::array<int64_t, 4> out{};
  if (!v.is_array() || v.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": '", field, "' must be a list of four "
                                                   "numbers (ConvNeXt V2 has four stages), got ",
                                                   v.dump()));
  }
  for (int i = 0; i < 4; ++i) {
    if (!v[i].is_number_integer() || v[i].get<int64_t>() <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": '", field, "' must hold positive integers, got ", v.dump()));
    }
    out[i] = v[i].get<int64_t>();
  }
  return out;
}

// id2label {"0": "cat", "1": "dog"} by index; empty unless the keys are exactly 0..n-1.
std::vector<std::string> ClassNames(const Json& config) {
  const Json v = config.value("id2label", Json());
  if (!v.is_object()) return {};
  std::vector<std::string> names(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    size_t i = 0;
    if (!absl::SimpleAtoi(it.key(), &i) || i >= names.size() || !it.value().is_string()) {
      return {};
    }
    names[i] = it.value().get<std::string>();
  }
  return names;
}

// What facebook/convnextv2-*-224 ship: ImageNet normalization, resize to 224/0.875, crop 224.
constexpr char kPreprocessorConfig[] = R"({
  "crop_pct": 0.875,
  "do_normalize": true,
  "do_rescale": true,
  "do_resize": true,
  "image_mean": [0.485, 0.456, 0.406],
  "image_processor_type": "ConvNextImageProcessor",
  "image_std": [0.229, 0.224, 0.225],
  "resample": 3,
  "rescale_factor": 0.00392156862745098,
  "size": {"shortest_edge": 224}
}
)";

void SyncDir(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

}  // namespace

bool IsHfFolder(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

absl::StatusOr<HfConfig> ReadHfConfig(const std::string& dir) {
  HfConfig out;
  out.path = (fs::path(dir) / "config.json").string();
  CONVNEXTV2_ASSIGN_OR_RETURN(const std::string text, util::ReadFile(out.path));
  const Json config = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(out.path, " is not a JSON object"));
  }
  const std::string type = config.value("model_type", "");
  if (type != "convnextv2") {
    return absl::InvalidArgumentError(absl::StrCat(
        out.path, ": model_type is '", type, "', not 'convnextv2' (a ConvNeXt V2 model folder)"));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(out.architecture.depths, FourNumbers(config, "depths", out.path));
  CONVNEXTV2_ASSIGN_OR_RETURN(out.architecture.dims,
                              FourNumbers(config, "hidden_sizes", out.path));
  const Json eps = config.value("layer_norm_eps", Json());
  if (eps.is_number()) out.layer_norm_eps = eps.get<double>();
  if (!(out.layer_norm_eps > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(out.path, ": layer_norm_eps must be positive, got ", eps.dump()));
  }
  out.class_names = ClassNames(config);
  return out;
}

absl::StatusOr<std::string> HfWeightsFile(const std::string& dir) {
  std::error_code ec;
  for (const char* name : {"model.safetensors", "pytorch_model.bin"}) {
    const fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  const bool sharded = fs::exists(fs::path(dir) / "model.safetensors.index.json", ec) ||
                       fs::exists(fs::path(dir) / "pytorch_model.bin.index.json", ec);
  return absl::NotFoundError(absl::StrCat(
      "model folder ", dir, " has config.json but no weights: neither model.safetensors nor "
      "pytorch_model.bin", sharded ? " (sharded weights, *.index.json, are not supported)" : ""));
}

std::string HfConfigJson(const Architecture& a, int64_t num_labels,
                         const std::vector<std::string>& class_names) {
  Json id2label = Json::object(), label2id = Json::object();
  for (int64_t i = 0; i < num_labels; ++i) {
    const std::string label = i < static_cast<int64_t>(class_names.size()) && !class_names[i].empty()
                                  ? class_names[i]
                                  : absl::StrCat("LABEL_", i);
    id2label[std::to_string(i)] = label;
    label2id[label] = i;
  }
  Json config = {
      {"architectures", Json::array({"ConvNextV2ForImageClassification"})},
      {"model_type", "convnextv2"},
      {"depths", a.depths},
      {"hidden_sizes", a.dims},
      {"num_channels", 3},
      {"num_stages", 4},
      {"patch_size", 4},
      {"hidden_act", "gelu"},
      {"drop_path_rate", 0.0},
      {"image_size", 224},
      {"initializer_range", 0.02},
      {"layer_norm_eps", 1e-6},
      {"num_labels", num_labels},
      {"id2label", id2label},
      {"label2id", label2id},
      {"torch_dtype", "float32"},
  };
  return config.dump(2) + "\n";
}

absl::Status PublishFolder(const std::string& tmp, const std::string& dir) {
  if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) != 0) {
    const int e = errno;
    std::error_code ec;
    fs::remove_all(tmp, ec);
    return absl::AlreadyExistsError(absl::StrCat("cannot create ", dir, ": ", std::strerror(e),
                                                 e == EEXIST ? " (it exists; nothing was written)"
                                                             : ""));
  }
  const fs::path parent = fs::absolute(dir).parent_path();
  SyncDir(parent.string());
  return absl::OkStatus();
}

absl::Status WriteHfFolder(const std::string& dir, const Architecture& a,
                           const std::map<std::string, at::Tensor>& tensors,
                           const std::vector<std::string>& class_names) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(
        absl::StrCat(dir, " exists; an export never overwrites (remove it or pick another --out)"));
  }
  auto head = tensors.find("classifier.weight");
  const int64_t num_labels = head == tensors.end() ? 0 : head->second.size(0);
  const std::string tmp = absl::StrCat(dir, ".tmp.", getpid());
  fs::remove_all(tmp, ec);
  CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(tmp));
  absl::Status s = util::WriteFileAtomically(tmp + "/config.json",
                                             HfConfigJson(a, num_labels, class_names));
  if (s.ok()) s = util::WriteFileAtomically(tmp + "/preprocessor_config.json", kPreprocessorConfig);
  if (s.ok()) s = WriteSafetensors(tmp + "/model.safetensors", tensors, {{"format", "pt"}});
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  SyncDir(tmp);
  return PublishFolder(tmp, dir);
}

}  // namespace convnextv2::checkpoint
