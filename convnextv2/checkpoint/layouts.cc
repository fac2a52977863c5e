#include "convnextv2/checkpoint/layouts.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convnextv2/models/variants.h"

namespace convnextv2::checkpoint {
namespace {

using Vars = std::map<char, std::string>;

// Matches `pattern` ({i}, {j}: a decimal number) against the start of `name`; returns the
// number of characters of `name` it covers.
std::optional<size_t> MatchPrefix(absl::string_view pattern, absl::string_view name, Vars* vars) {
  size_t n = 0;
  for (size_t p = 0; p < pattern.size(); ++p) {
    if (pattern[p] == '{' && p + 2 < pattern.size() && pattern[p + 2] == '}') {
      const size_t start = n;
      while (n < name.size() && std::isdigit(static_cast<unsigned char>(name[n]))) ++n;
      if (n == start) return std::nullopt;
      (*vars)[pattern[p + 1]] = std::string(name.substr(start, n - start));
      p += 2;
    } else if (n < name.size() && name[n] == pattern[p]) {
      ++n;
    } else {
      return std::nullopt;
    }
  }
  return n;
}

std::string Substitute(absl::string_view pattern, const Vars& vars) {
  std::string out;
  for (size_t p = 0; p < pattern.size(); ++p) {
    if (pattern[p] == '{' && p + 2 < pattern.size() && pattern[p + 2] == '}') {
      out += vars.at(pattern[p + 1]);
      p += 2;
    } else {
      out += pattern[p];
    }
  }
  return out;
}

// Renames by the first matching pair (from = pair.second when `to_official`, else pair.first).
std::string Rename(const RenameTable& table, const std::string& name, bool to_official) {
  for (const auto& [official, other] : table) {
    Vars vars;
    const std::string& from = to_official ? other : official;
    if (std::optional<size_t> n = MatchPrefix(from, name, &vars)) {
      return Substitute(to_official ? official : other, vars) + name.substr(*n);
    }
  }
  return name;
}

bool HasPrefix(const TensorMap& state, absl::string_view pattern) {
  for (const auto& [name, t] : state) {
    Vars vars;
    if (MatchPrefix(pattern, name, &vars)) return true;
  }
  return false;
}

const RenameTable& TimmTable() {
  static const RenameTable* table = new RenameTable{
      {"downsample_layers.0.", "stem."},
      {"downsample_layers.{i}.", "stages.{i}.downsample."},
      {"stages.{i}.{j}.dwconv.", "stages.{i}.blocks.{j}.conv_dw."},
      {"stages.{i}.{j}.grn.gamma", "stages.{i}.blocks.{j}.mlp.grn.weight"},
      {"stages.{i}.{j}.grn.beta", "stages.{i}.blocks.{j}.mlp.grn.bias"},
      {"stages.{i}.{j}.pwconv", "stages.{i}.blocks.{j}.mlp.fc"},
      {"stages.{i}.{j}.", "stages.{i}.blocks.{j}."},
      {"norm.", "head.norm."},
      {"head.", "head.fc."},
  };
  return *table;
}

const RenameTable& TransformersTable() {
  static const RenameTable* table = new RenameTable{
      {"downsample_layers.0.0.", "convnextv2.embeddings.patch_embeddings."},
      {"downsample_layers.0.1.", "convnextv2.embeddings.layernorm."},
      {"downsample_layers.{i}.", "convnextv2.encoder.stages.{i}.downsampling_layer."},
      {"stages.{i}.{j}.norm.", "convnextv2.encoder.stages.{i}.layers.{j}.layernorm."},
      {"stages.{i}.{j}.grn.gamma", "convnextv2.encoder.stages.{i}.layers.{j}.grn.weight"},
      {"stages.{i}.{j}.grn.beta", "convnextv2.encoder.stages.{i}.layers.{j}.grn.bias"},
      {"stages.{i}.{j}.", "convnextv2.encoder.stages.{i}.layers.{j}."},
      {"norm.", "convnextv2.layernorm."},
      {"head.", "classifier."},
  };
  return *table;
}

// timm: 1x1-conv MLP weights (C4, C, 1, 1) -> (C4, C); GRN (C) -> (1, 1, 1, C).
TensorMap TimmToOfficial(const TensorMap& state) {
  TensorMap out;
  for (const auto& [name, t] : state) {
    const std::string k = Rename(TimmTable(), name, /*to_official=*/true);
    at::Tensor v = t;
    if (absl::StrContains(k, ".pwconv") && v.dim() == 4) v = v.flatten(1);
    if (absl::StrContains(k, ".grn.") && v.dim() == 1) v = v.reshape({1, 1, 1, -1});
    out[k] = v;
  }
  return out;
}

TensorMap TransformersToOfficial(const TensorMap& state) {
  TensorMap out;
  for (const auto& [name, t] : state) {
    // A bare ConvNextV2Model (no classifier) has the names without "convnextv2.".
    const bool bare = absl::StartsWith(name, "embeddings.") || absl::StartsWith(name, "encoder.") ||
                      absl::StartsWith(name, "layernorm.");
    out[Rename(TransformersTable(), bare ? "convnextv2." + name : name, true)] = t;
  }
  return out;
}

bool IsTimm(const TensorMap& s) {
  return s.count("stem.0.weight") > 0 || HasPrefix(s, "stages.{i}.blocks.");
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

std::vector<WeightLayout>* MakeLayouts() {
  auto* layouts = new std::vector<WeightLayout>;
  layouts->push_back({"transformers",
                      [](const TensorMap& s) {
                        return HasPrefix(s, "convnextv2.embeddings.") ||
                               s.count("embeddings.patch_embeddings.weight") > 0;
                      },
                      TransformersToOfficial, TransformersTable()});
  layouts->push_back({"timm FCMAE encoder",
                      [](const TensorMap& s) {
                        return IsTimm(s) && !HasPrefix(s, "head.");
                      },
                      TimmToOfficial, TimmTable()});
  layouts->push_back({"timm", IsTimm, TimmToOfficial, TimmTable()});
  layouts->push_back({"FCMAE sparse",
                      [](const TensorMap& s) {
                        for (const auto& [name, t] : s) {
                          if (absl::StartsWith(name, "encoder.") || absl::EndsWith(name, ".kernel")) {
                            return true;
                          }
                        }
                        return false;
                      },
                      RemapFcmaeKeys, {}});
  layouts->push_back({"official", [](const TensorMap&) { return true; },
                      [](const TensorMap& s) { return s; }, {}});
  return layouts;
}

std::string Dashed(const std::array<int64_t, 4>& v) { return absl::StrJoin(v, "-"); }

}  // namespace

const std::vector<WeightLayout>& WeightLayouts() {
  static const std::vector<WeightLayout>* layouts = MakeLayouts();
  return *layouts;
}

const WeightLayout& DetectLayout(const TensorMap& state) {
  for (const WeightLayout& layout : WeightLayouts()) {
    if (layout.detect(state)) return layout;
  }
  return WeightLayouts().back();
}

const WeightLayout& TransformersLayout() { return WeightLayouts().front(); }

TensorMap FromOfficial(const WeightLayout& layout, const TensorMap& official) {
  TensorMap out;
  for (const auto& [name, t] : official) out[Rename(layout.table, name, false)] = t;
  return out;
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
    if (parts.size() >= 2 &&
        (parts[parts.size() - 2] == "ln" || parts[parts.size() - 2] == "linear")) {
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

std::optional<Architecture> InferArchitecture(const TensorMap& official) {
  Architecture a{{0, 0, 0, 0}, {0, 0, 0, 0}};
  for (const auto& [name, t] : official) {
    Vars vars;
    if (!MatchPrefix("stages.{i}.{j}.dwconv.weight", name, &vars) || t.dim() == 0) continue;
    int64_t i = 0, j = 0;
    if (!absl::SimpleAtoi(vars['i'], &i) || !absl::SimpleAtoi(vars['j'], &j) || i < 0 || i > 3) {
      continue;
    }
    a.depths[i] = std::max(a.depths[i], j + 1);
    a.dims[i] = t.size(0);
  }
  for (int64_t d : a.depths) {
    if (d == 0) return std::nullopt;
  }
  return a;
}

std::string VariantOf(const Architecture& a) {
  std::vector<models::Variant> all = models::AllVariants();
  if (absl::StatusOr<models::Variant> test = models::FindVariant(models::kTestVariant); test.ok()) {
    all.push_back(*test);
  }
  for (const models::Variant& v : all) {
    if (std::equal(v.depths.begin(), v.depths.end(), a.depths.begin()) &&
        std::equal(v.dims.begin(), v.dims.end(), a.dims.begin())) {
      return v.name;
    }
  }
  return "";
}

std::string DescribeArchitecture(const Architecture& a) {
  const std::string shape =
      absl::StrCat("depths ", Dashed(a.depths), ", dims ", Dashed(a.dims));
  const std::string variant = VariantOf(a);
  return variant.empty() ? shape : absl::StrCat(variant, " (", shape, ")");
}

}  // namespace convnextv2::checkpoint
