#include "convnextv2/checkpoint/pretrained.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/serialize/input-archive.h>

#include <cmath>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/torch_zip.h"
#include "convnextv2/models/init.h"
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

at::Tensor RemapKernel(const at::Tensor& v) {
  if (v.dim() == 3) {  // (k*k, Cin, Cout) -> (Cout, Cin, k, k)
    const int64_t ks = std::lround(std::sqrt(static_cast<double>(v.size(0))));
    return v.permute({2, 1, 0}).reshape({v.size(2), v.size(1), ks, ks}).transpose(3, 2);
  }
  if (v.dim() == 2) {  // depthwise (k*k, C) -> (C, 1, k, k)
    const int64_t ks = std::lround(std::sqrt(static_cast<double>(v.size(0))));
    return v.permute({1, 0}).reshape({v.size(1), 1, ks, ks}).transpose(3, 2);
  }
  return v;
}

bool IsPretrainingOnly(const std::string& name) {
  // The official filter matches substrings; the dense model has none of these in its names.
  for (const char* part : {"decoder", "mask_token", "proj", "pred"}) {
    if (absl::StrContains(name, part)) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<StateDictFile> ReadStateDict(const std::string& path,
                                            absl::string_view model_key) {
  std::string magic(4, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return util::ReadFile(path).status();  // names the path and the reason
    in.read(magic.data(), magic.size());
    magic.resize(std::max<std::streamsize>(in.gcount(), 0));
  }
  if (LooksLikeCheckpoint(path)) return FromOurs(path, model_key);
  if (!absl::StartsWith(magic, "PK\x03\x04")) {
    if (!magic.empty() && static_cast<unsigned char>(magic[0]) == 0x80) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " is a legacy (pre-1.6, non-zip) torch.save file; re-save it in Python with "
          "torch.save(torch.load(f), f) to get the zip format"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path, " is not a checkpoint (neither a convnextv2 checkpoint nor a PyTorch zip file)"));
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

TensorMap RemapFcmaeKeys(const TensorMap& state) {
  TensorMap out;
  for (const auto& [key, v] : state) {
    std::string k = key;
    if (absl::StartsWith(k, "encoder.")) k = k.substr(8);
    std::vector<std::string> parts = absl::StrSplit(k, '.');
    if (parts.back() == "kernel") {
      parts.back() = "weight";
      out[absl::StrJoin(parts, ".")] = RemapKernel(v);
      continue;
    }
    if (parts.size() >= 2 && (parts[parts.size() - 2] == "ln" || parts[parts.size() - 2] == "linear")) {
      parts.erase(parts.end() - 2);
    }
    out[absl::StrJoin(parts, ".")] = v;
  }
  for (auto& [k, v] : out) {
    if (absl::EndsWith(k, "bias") && v.dim() != 1) {
      v = v.reshape({-1});
    } else if (absl::StrContains(k, "grn") && v.dim() == 2) {
      v = v.unsqueeze(0).unsqueeze(1);
    }
  }
  return out;
}

absl::StatusOr<PretrainedReport> InitFromPretrained(const std::string& path,
                                                    absl::string_view model_key,
                                                    absl::string_view model_prefix,
                                                    torch::nn::Module& model, bool reinit_head) {
  absl::StatusOr<StateDictFile> file = ReadStateDict(path, model_key);
  CONVNEXTV2_RETURN_IF_ERROR(file);
  PretrainedReport report;
  report.format = file->format;
  report.key = file->key;
  TensorMap state;
  for (auto& [name, t] : file->tensors) {
    if (!absl::StartsWith(name, model_prefix)) continue;
    state[name.substr(model_prefix.size())] = t;
  }
  const TensorMap targets = ModuleState(model);
  for (const char* head : {"head.weight", "head.bias"}) {
    auto it = state.find(head);
    auto target = targets.find(head);
    if (it != state.end() && target != targets.end() &&
        !it->second.sizes().equals(target->second.sizes())) {
      report.dropped.push_back(head);
      state.erase(it);
    }
  }
  for (auto it = state.begin(); it != state.end();) {
    if (IsPretrainingOnly(it->first)) {
      report.dropped.push_back(it->first);
      it = state.erase(it);
    } else {
      ++it;
    }
  }
  state = RemapFcmaeKeys(state);
  if (absl::Status s = LoadModuleState(state, model, /*strict=*/false, path, &report.load);
      !s.ok()) {
    return s;
  }
  if (report.load.loaded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no tensor matches the model (", report.load.unexpected.size(),
        " unexpected keys, e.g. '",
        report.load.unexpected.empty() ? "" : report.load.unexpected.front(),
        "'); check checkpoint.model_key and checkpoint.model_prefix"));
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

absl::Status ExportForPyTorch(const torch::nn::Module& module, const std::string& path) {
  c10::Dict<std::string, at::Tensor> state;
  for (const auto& [name, t] : ModuleState(module)) state.insert(name, t.detach().to(at::kCPU));
  c10::Dict<std::string, c10::Dict<std::string, at::Tensor>> root;
  root.insert("model", state);
  return util::WriteFileAtomically(path, SerializeTorchZip(c10::IValue(root), {}));
}

}  // namespace convnextv2::checkpoint
