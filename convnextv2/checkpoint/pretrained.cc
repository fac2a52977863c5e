#include "convnextv2/checkpoint/pretrained.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/serialize/input-archive.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/safetensors.h"
#include "convnextv2/checkpoint/torch_zip.h"
#include "convnextv2/models/init.h"
#include "convnextv2/models/layers.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

std::vector<std::string> Keys(absl::string_view model_key) {
  return absl::StrSplit(model_key, '|', absl::SkipEmpty());
}

absl::StatusOr<StateDictFile> FromOurs(const std::string& path, absl::string_view model_key) {
  absl::StatusOr<Checkpoint> ckpt = ReadCheckpoint(path);
  CONVNEXTV2_RETURN_IF_ERROR(ckpt);
  StateDictFile out;
  out.format = "convnextv2 checkpoint";
  out.class_names.assign(ckpt->header.class_names().begin(), ckpt->header.class_names().end());
  for (const std::string& key : Keys(model_key)) {
    for (auto& [name, t] : ckpt->WithPrefix(key + ".")) out.tensors[name] = t;
    if (!out.tensors.empty()) {
      out.key = key;
      return out;
    }
  }
  std::vector<std::string> prefixes;
  for (const auto& [name, t] : ckpt->tensors) {
    const std::string p = name.substr(0, name.find('.'));
    if (prefixes.empty() || prefixes.back() != p) prefixes.push_back(p);
  }
  return absl::NotFoundError(absl::StrCat("checkpoint ", path, " has no '", model_key,
                                          "' weights (checkpoint.model_key); it holds: ",
                                          absl::StrJoin(prefixes, ", ")));
}

absl::StatusOr<StateDictFile> FromTorchZip(const std::string& path,
                                           absl::string_view model_key) {
  absl::StatusOr<TorchZipDict> zip = ReadTorchZip(path);
  CONVNEXTV2_RETURN_IF_ERROR(zip);
  StateDictFile out;
  out.format = "PyTorch zip";
  for (const std::string& key : Keys(model_key)) {
    auto it = zip->dicts.find(key);
    if (it == zip->dicts.end()) continue;
    out.tensors.insert(it->second.begin(), it->second.end());
    out.key = key;
    return out;
  }
  if (!zip->tensors.empty() && zip->tensors.size() == zip->keys.size()) {  // a bare state dict
    out.tensors = zip->tensors;
    return out;
  }
  return absl::NotFoundError(absl::StrCat(path, " has none of the keys '", model_key,
                                          "' (checkpoint.model_key); it has: ",
                                          absl::StrJoin(zip->keys, ", ")));
}

absl::StatusOr<StateDictFile> FromArchive(const std::string& path, absl::string_view model_key) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  StateDictFile out;
  out.format = "OutputArchive";
  for (const std::string& key : Keys(model_key)) {
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) {
      for (const std::string& name : sub.keys()) {
        at::Tensor t;
        if (sub.try_read(name, t)) out.tensors[name] = t;
      }
      out.key = key;
      return out;
    }
  }
  for (const std::string& name : archive.keys()) {
    at::Tensor t;
    if (archive.try_read(name, t) || archive.try_read(name, t, /*is_buffer=*/true)) {
      out.tensors[name] = t;
    }
  }
  if (out.tensors.empty()) {
    return absl::NotFoundError(absl::StrCat(path, ": the archive holds no tensors"));
  }
  return out;
}

bool IsPretrainingOnly(const std::string& name) {
  // The official filter matches substrings; the dense model has none of these in its names.
  for (const char* part : {"decoder", "mask_token", "proj", "pred"}) {
    if (absl::StrContains(name, part)) return true;
  }
  return false;
}

// The model's architecture against the weights' (or a folder's config.json): a different
// variant is an error naming both, before anything loads half.
absl::Status CheckArchitecture(const OfficialWeights& w, const TensorMap& targets,
                               const std::string& what) {
  const std::optional<Architecture> model = InferArchitecture(targets);
  if (!model) return absl::OkStatus();
  const std::string want = DescribeArchitecture(*model);
  if (w.hf_config && !(w.hf_config->architecture == *model)) {
    return absl::InvalidArgumentError(absl::StrCat(
        w.hf_config->path, ": depths and hidden_sizes describe ",
        DescribeArchitecture(w.hf_config->architecture),
        ", but the model (--model, model.model) is ", want));
  }
  const std::optional<Architecture> file = InferArchitecture(w.tensors);
  if (file && !(*file == *model)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " holds the weights of ", DescribeArchitecture(*file), " (", w.layout,
        " layout), but the model (--model, model.model) is ", want));
  }
  return absl::OkStatus();
}

// The final norm ("norm", a models::LayerNorm) takes a model folder's layer_norm_eps.
bool SetFinalNormEps(torch::nn::Module& model, double eps) {
  for (const auto& item : model.named_children()) {
    if (item.key() != "norm") continue;
    if (auto* ln = dynamic_cast<models::LayerNormImpl*>(item.value().get())) {
      ln->options.eps(eps);
      return true;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<StateDictFile> ReadStateDict(const std::string& path,
                                            absl::string_view model_key) {
  std::string magic(16, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return util::ReadFile(path).status();  // names the path and the reason
    in.read(magic.data(), magic.size());
    magic.resize(std::max<std::streamsize>(in.gcount(), 0));
  }
  if (LooksLikeCheckpoint(path)) return FromOurs(path, model_key);
  if (LooksLikeSafetensors(magic) || absl::EndsWith(path, ".safetensors")) {
    CONVNEXTV2_ASSIGN_OR_RETURN(SafetensorsFile st, ReadSafetensors(path));
    return StateDictFile{std::move(st.tensors), "safetensors", "", {}};
  }
  if (!absl::StartsWith(magic, "PK\x03\x04")) {
    if (!magic.empty() && static_cast<unsigned char>(magic[0]) == 0x80) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " is a legacy (pre-1.6, non-zip) torch.save file; re-save it in Python with "
          "torch.save(torch.load(f), f) to get the zip format"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a checkpoint (neither a convnextv2 checkpoint, a PyTorch zip file, a "
        ".safetensors file nor a model folder with config.json)"));
  }
  // torch.save zips hold data.pkl; torch::serialize archives (TorchScript modules) do not.
  absl::StatusOr<StateDictFile> from_zip = FromTorchZip(path, model_key);
  if (from_zip.ok() || from_zip.status().code() != absl::StatusCode::kInvalidArgument) {
    return from_zip;
  }
  try {
    return FromArchive(path, model_key);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is a zip file but neither a torch.save dict (", from_zip.status().message(),
        ") nor a torch::serialize archive (", e.what_without_backtrace(), ")"));
  }
}

absl::StatusOr<OfficialWeights> ReadOfficialWeights(const std::string& path,
                                                    absl::string_view model_key,
                                                    absl::string_view model_prefix) {
  OfficialWeights out;
  std::string file = path;
  if (IsHfFolder(path)) {
    CONVNEXTV2_ASSIGN_OR_RETURN(out.hf_config, ReadHfConfig(path));
    CONVNEXTV2_ASSIGN_OR_RETURN(file, HfWeightsFile(path));
  } else if (std::error_code ec; std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is a folder without config.json (a Hugging Face model folder has config.json "
        "and model.safetensors or pytorch_model.bin)"));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(StateDictFile sd, ReadStateDict(file, model_key));
  out.format = out.hf_config ? absl::StrCat("model folder, ", sd.format) : sd.format;
  out.key = sd.key;
  out.class_names = out.hf_config ? out.hf_config->class_names : sd.class_names;
  TensorMap state;
  for (auto& [name, t] : sd.tensors) {
    if (!absl::StartsWith(name, model_prefix)) continue;
    const std::string rest = name.substr(model_prefix.size());
    if (IsPretrainingOnly(rest)) {
      out.dropped.push_back(rest);
    } else {
      state[rest] = t;
    }
  }
  const WeightLayout& layout = DetectLayout(state);
  out.layout = layout.name;
  out.tensors = layout.to_official(state);
  return out;
}

std::vector<std::string> DescribeLoad(const std::string& path, const PretrainedReport& r) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat("Load pre-trained checkpoint from: ", path, " (", r.format,
                               r.key.empty() ? "" : ", key '" + r.key + "'", ") in the ",
                               r.layout, " layout"));
  for (const std::string& k : r.dropped) {
    lines.push_back(absl::StrCat("Removing key ", k, " from pretrained checkpoint"));
  }
  lines.push_back(absl::StrCat(r.load.loaded.size(), " tensors loaded"));
  const std::pair<const char*, const std::vector<std::string>*> lists[] = {
      {"Weights not initialized from pretrained model: ", &r.load.missing},
      {"Weights from pretrained model not used: ", &r.load.unexpected},
      {"Weights skipped for their shape: ", &r.load.shape_mismatch}};
  for (const auto& [what, names] : lists) {
    if (!names->empty()) lines.push_back(absl::StrCat(what, absl::StrJoin(*names, ", ")));
  }
  if (r.final_norm_eps) {
    lines.push_back(absl::StrCat("Final norm eps ", *r.final_norm_eps, " (config.json)"));
  }
  return lines;
}

absl::StatusOr<PretrainedReport> LoadOfficialWeights(OfficialWeights weights,
                                                     const std::string& what,
                                                     torch::nn::Module& model, bool reinit_head) {
  PretrainedReport report;
  report.format = weights.format;
  report.key = weights.key;
  report.layout = weights.layout;
  report.dropped = weights.dropped;
  report.class_names = weights.class_names;
  TensorMap& state = weights.tensors;
  const TensorMap targets = ModuleState(model);
  CONVNEXTV2_RETURN_IF_ERROR(CheckArchitecture(weights, targets, what));
  for (const char* head : {"head.weight", "head.bias"}) {
    auto it = state.find(head);
    auto target = targets.find(head);
    if (it != state.end() && target != targets.end() &&
        !it->second.sizes().equals(target->second.sizes())) {
      report.dropped.push_back(head);
      state.erase(it);
    }
  }
  CONVNEXTV2_RETURN_IF_ERROR(
      LoadModuleState(state, model, /*strict=*/false, what, &report.load));
  if (report.load.loaded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": no tensor matches the model (", weights.layout, " layout; ",
        report.load.unexpected.size(), " unexpected keys, e.g. '",
        report.load.unexpected.empty() ? "" : report.load.unexpected.front(),
        "'); check checkpoint.model_key and checkpoint.model_prefix"));
  }
  if (weights.hf_config && SetFinalNormEps(model, weights.hf_config->layer_norm_eps)) {
    report.final_norm_eps = weights.hf_config->layer_norm_eps;
  }
  if (reinit_head) {
    auto params = model.named_parameters();
    if (at::Tensor* w = params.find("head.weight")) {
      c10::NoGradGuard no_grad;
      models::TruncNormal_(*w, 0.0, 2e-5);
      if (at::Tensor* b = params.find("head.bias")) b->zero_();
      report.head_reinitialized = true;
    }
  }
  return report;
}

absl::StatusOr<PretrainedReport> InitFromPretrained(const std::string& path,
                                                    absl::string_view model_key,
                                                    absl::string_view model_prefix,
                                                    torch::nn::Module& model, bool reinit_head) {
  CONVNEXTV2_ASSIGN_OR_RETURN(OfficialWeights weights,
                              ReadOfficialWeights(path, model_key, model_prefix));
  return LoadOfficialWeights(std::move(weights), path, model, reinit_head);
}

absl::StatusOr<InferenceModel> LoadInferenceModel(const std::string& path,
                                                  absl::string_view model_name,
                                                  absl::string_view model_key) {
  CONVNEXTV2_ASSIGN_OR_RETURN(OfficialWeights weights, ReadOfficialWeights(path, model_key, ""));
  InferenceModel out;
  const std::optional<Architecture> arch = InferArchitecture(weights.tensors);
  out.variant = arch ? VariantOf(*arch) : "";
  if (out.variant.empty() && model_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " (", weights.layout, " layout) holds no complete ConvNeXt V2 of a known variant",
        arch ? " (" + DescribeArchitecture(*arch) + ")" : "", "; name one with --model"));
  }
  if (!model_name.empty()) out.variant = std::string(model_name);
  auto head = weights.tensors.find("head.weight");
  if (head == weights.tensors.end() || head->second.dim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " (", weights.layout, " layout) has no classifier head (head.weight): encoder-only "
        "weights need fine-tuning (--finetune) before they can classify"));
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(out.model,
                              models::CreateConvNeXtV2(out.variant, head->second.size(0)));
  CONVNEXTV2_ASSIGN_OR_RETURN(
      out.report, LoadOfficialWeights(std::move(weights), path, *out.model, /*reinit_head=*/false));
  const LoadReport& load = out.report.load;
  if (!load.missing.empty() || !load.shape_mismatch.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " does not hold every weight of ", out.variant, " (missing: ",
        absl::StrJoin(load.missing, ", "), "; mis-shaped: ", absl::StrJoin(load.shape_mismatch, ", "),
        "); inference needs all of them"));
  }
  out.class_names = out.report.class_names;
  out.model->eval();
  return out;
}

absl::Status ExportForPyTorch(const torch::nn::Module& module, const std::string& path) {
  c10::Dict<std::string, at::Tensor> state;
  for (const auto& [name, t] : ModuleState(module)) state.insert(name, t.detach().to(at::kCPU));
  c10::Dict<std::string, c10::Dict<std::string, at::Tensor>> root;
  root.insert("model", state);
  return util::WriteFileAtomically(path, SerializeTorchZip(c10::IValue(root), {}));
}

}  // namespace convnextv2::checkpoint
