#include "convnextv2/config/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convnextv2/data/cifar_dataset.h"
#include "convnextv2/models/variants.h"
#include "convnextv2/util/signals.h"
#include "convnextv2/util/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/text_format.h"

namespace convnextv2::config {
namespace {

namespace pb = ::google::protobuf;

// Leaf paths and the map from official flag name to path, built once from the descriptor.
struct FieldIndex {
  std::vector<std::string> paths;
  std::map<std::string, std::string, std::less<>> by_leaf;
};

void IndexMessage(const pb::Descriptor* d, const std::string& prefix, FieldIndex* index) {
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    const std::string path = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
      IndexMessage(f->message_type(), path, index);
      continue;
    }
    index->paths.push_back(path);
    // Leaf names are the official flag names; the proto keeps them unique so a flag is one field.
    const bool inserted = index->by_leaf.emplace(f->name(), path).second;
    if (!inserted) {
      std::fprintf(stderr, "experiment.proto: leaf field name '%s' is not unique\n",
                   f->name().c_str());
      std::abort();
    }
  }
}

const FieldIndex& Index() {
  static const FieldIndex* const kIndex = [] {
    auto* index = new FieldIndex;
    IndexMessage(ExperimentConfig::descriptor(), "", index);
    return index;
  }();
  return *kIndex;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Suggestion(absl::string_view name) {
  std::string best;
  size_t best_distance = 4;  // farther than this is not a typo
  for (const auto& [leaf, path] : Index().by_leaf) {
    for (const std::string& candidate : {leaf, path}) {
      const size_t d = EditDistance(name, candidate);
      if (d < best_distance) {
        best_distance = d;
        best = candidate;
      }
    }
  }
  return best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)");
}

// Collects parser errors as "file:line:col: message", quoting the offending line (protobuf's
// messages, e.g. 'Expected integer, got: "x"', do not name the field).
class CollectingErrors : public pb::io::ErrorCollector {
 public:
  CollectingErrors(absl::string_view source, absl::string_view text)
      : source_(source), lines_(absl::StrSplit(text, '\n')) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    std::string error = absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
    if (line >= 0 && line < static_cast<int>(lines_.size())) {
      absl::StrAppend(&error, " in `", absl::StripAsciiWhitespace(lines_[line]), "`");
    }
    errors_.push_back(std::move(error));
  }
  void AddWarning(int line, pb::io::ColumnNumber column, const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Joined() const { return absl::StrJoin(errors_, "\n"); }

 private:
  std::string source_;
  std::vector<std::string> lines_;
  std::vector<std::string> errors_;
};

absl::StatusOr<bool> ParseBool(absl::string_view v) {
  const std::string s = absl::AsciiStrToLower(v);
  if (s == "yes" || s == "true" || s == "t" || s == "y" || s == "1") return true;
  if (s == "no" || s == "false" || s == "f" || s == "n" || s == "0") return false;
  return absl::InvalidArgumentError("expected a boolean (true/false, yes/no, 1/0)");
}

absl::string_view TypeName(const pb::FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
      return "an integer";
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return "a number";
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      return "a boolean (true/false)";
    case pb::FieldDescriptor::CPPTYPE_STRING:
      return "a string";
    default:
      return "a value";
  }
}

// Sets (or appends, for repeated fields) one scalar value.
absl::Status SetScalar(pb::Message* msg, const pb::FieldDescriptor* f, absl::string_view raw,
                       absl::string_view path) {
  const pb::Reflection* r = msg->GetReflection();
  absl::string_view value = absl::StripAsciiWhitespace(raw);
  const bool repeated = f->is_repeated();
  auto bad = [&]() {
    return absl::InvalidArgumentError(absl::StrCat("field ", path, " expects ", TypeName(f),
                                                   ", got '", raw, "'"));
  };
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad();
      repeated ? r->AddInt32(msg, f, v) : r->SetInt32(msg, f, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad();
      repeated ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(value, &v) || !std::isfinite(v)) return bad();
      repeated ? r->AddDouble(msg, f, v) : r->SetDouble(msg, f, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(value, &v) || !std::isfinite(v)) return bad();
      repeated ? r->AddFloat(msg, f, v) : r->SetFloat(msg, f, v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_BOOL: {
      absl::StatusOr<bool> v = ParseBool(value);
      if (!v.ok()) return bad();
      repeated ? r->AddBool(msg, f, *v) : r->SetBool(msg, f, *v);
      return absl::OkStatus();
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string v(value);
      // The official command lines quote some values ('group'); shells strip them, files don't.
      if (v.size() >= 2 && (v.front() == '\'' || v.front() == '"') && v.back() == v.front()) {
        v = v.substr(1, v.size() - 2);
      }
      repeated ? r->AddString(msg, f, v) : r->SetString(msg, f, v);
      return absl::OkStatus();
    }
    default:
      return absl::InternalError(absl::StrCat("field ", path, " has an unsupported type"));
  }
}

// The message holding the leaf at `path` (created on the way) and the leaf's descriptor.
absl::StatusOr<std::pair<pb::Message*, const pb::FieldDescriptor*>> Locate(
    absl::string_view path_or_name, ExperimentConfig* config) {
  absl::StatusOr<std::string> path = CanonicalPath(path_or_name);
  CONVNEXTV2_RETURN_IF_ERROR(path);
  pb::Message* msg = config;
  const std::vector<std::string> parts = absl::StrSplit(*path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const pb::FieldDescriptor* f = msg->GetDescriptor()->FindFieldByName(parts[i]);
    msg = msg->GetReflection()->MutableMessage(msg, f);
  }
  return std::make_pair(msg, msg->GetDescriptor()->FindFieldByName(parts.back()));
}

void ResolveMessagePaths(absl::string_view base_dir, pb::Message* msg) {
  const pb::Reflection* r = msg->GetReflection();
  const pb::Descriptor* d = msg->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    if (f->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
      if (!f->is_repeated() && r->HasField(*msg, f)) {
        ResolveMessagePaths(base_dir, r->MutableMessage(msg, f));
      }
      continue;
    }
    if (!f->options().GetExtension(convnextv2::path) || f->is_repeated()) continue;
    // Defaults matter too: an unset relative default would otherwise resolve to Bazel's cwd.
    const std::string value = r->GetString(*msg, f);
    if (value.empty() || value.front() == '/') continue;
    r->SetString(msg, f, (std::filesystem::path(std::string(base_dir)) / value).lexically_normal().string());
  }
}

bool OneOf(absl::string_view value, std::initializer_list<absl::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

std::string Quoted(std::initializer_list<absl::string_view> allowed) {
  return absl::StrJoin(allowed, ", ");
}

}  // namespace

absl::string_view ModeName(Mode mode) { return mode == Mode::kPretrain ? "pretrain" : "finetune"; }

ExperimentConfig ModeDefaults(Mode mode) {
  ExperimentConfig c;
  if (mode == Mode::kPretrain) {
    // main_pretrain.py's defaults where they differ from main_finetune.py's; betas are
    // hard-coded there as AdamW(betas=(0.9, 0.95)).
    c.mutable_train()->set_epochs(800);
    c.mutable_schedule()->set_warmup_epochs(40);
    c.mutable_optim()->set_blr(1.5e-4);
    c.mutable_schedule()->set_min_lr(0.0);
    c.mutable_optim()->add_opt_betas(0.9);
    c.mutable_optim()->add_opt_betas(0.95);
  }
  return c;
}

absl::StatusOr<ExperimentConfig> ParseText(absl::string_view text, absl::string_view source_name) {
  ExperimentConfig config;
  pb::TextFormat::Parser parser;
  CollectingErrors errors(source_name, text);
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse ExperimentConfig:\n", errors.Joined()));
  }
  return config;
}

absl::StatusOr<ExperimentConfig> LoadTextFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("config file ", path, " cannot be read: ",
                                            std::filesystem::exists(path) ? "permission denied"
                                                                          : "no such file"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseText(buffer.str(), path);
}

std::string ToText(const ExperimentConfig& config) {
  std::string out;
  pb::TextFormat::Printer printer;
  printer.PrintToString(config, &out);
  return out;
}

const std::vector<std::string>& LeafPaths() { return Index().paths; }

absl::StatusOr<std::string> CanonicalPath(absl::string_view name_or_path) {
  const FieldIndex& index = Index();
  if (auto it = index.by_leaf.find(name_or_path); it != index.by_leaf.end()) return it->second;
  if (std::find(index.paths.begin(), index.paths.end(), name_or_path) != index.paths.end()) {
    return std::string(name_or_path);
  }
  // A message name ("optim") is a common slip: say which leaves it has.
  if (const pb::FieldDescriptor* f =
          ExperimentConfig::descriptor()->FindFieldByName(std::string(name_or_path));
      f != nullptr && f->type() == pb::FieldDescriptor::TYPE_MESSAGE) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", name_or_path, "' is a group of fields, not a field; use ", name_or_path,
        ".<field>, e.g. ", name_or_path, ".", f->message_type()->field(0)->name()));
  }
  return absl::NotFoundError(
      absl::StrCat("unknown field '", name_or_path, "'", Suggestion(name_or_path)));
}

absl::Status SetField(absl::string_view path, absl::string_view value, ExperimentConfig* config) {
  auto located = Locate(path, config);
  CONVNEXTV2_RETURN_IF_ERROR(located);
  auto [msg, field] = *located;
  if (!field->is_repeated()) return SetScalar(msg, field, value, path);
  absl::string_view list = absl::StripAsciiWhitespace(value);
  if (absl::ConsumePrefix(&list, "[")) {
    if (!absl::ConsumeSuffix(&list, "]")) {
      return absl::InvalidArgumentError(
          absl::StrCat("field ", path, ": unbalanced '[' in '", value, "'"));
    }
  }
  std::vector<std::string> values =
      absl::StrSplit(list, absl::ByAnyChar(", "), absl::SkipWhitespace());
  return SetRepeatedField(path, values, config);
}

absl::Status SetRepeatedField(absl::string_view path, const std::vector<std::string>& values,
                              ExperimentConfig* config) {
  auto located = Locate(path, config);
  CONVNEXTV2_RETURN_IF_ERROR(located);
  auto [msg, field] = *located;
  if (!field->is_repeated()) {
    if (values.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("field ", path, " takes one value, got ",
                                                     values.size(), ": ",
                                                     absl::StrJoin(values, " ")));
    }
    return SetScalar(msg, field, values[0], path);
  }
  msg->GetReflection()->ClearField(msg, field);
  for (const std::string& v : values) {
    CONVNEXTV2_RETURN_IF_ERROR(SetScalar(msg, field, v, path));
  }
  return absl::OkStatus();
}

absl::Status ApplyOverride(absl::string_view assignment, ExperimentConfig* config) {
  const size_t eq = assignment.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("override '", assignment, "' is not of the form path.to.field=value"));
  }
  return SetField(absl::StripAsciiWhitespace(assignment.substr(0, eq)), assignment.substr(eq + 1),
                  config);
}

void ResolvePaths(absl::string_view base_dir, ExperimentConfig* config) {
  // Path fields live in sub-messages; make sure defaults of unset sub-messages are seen too.
  config->mutable_data();
  config->mutable_checkpoint();
  config->mutable_output();
  ResolveMessagePaths(base_dir, config);
}

std::string ResolveDataClasses(ExperimentConfig* config, Mode mode) {
  if (mode != Mode::kFinetune || config->data().data_set() != "CIFAR") return "";
  const std::string& dir = config->data().data_path();
  absl::StatusOr<int> classes = data::CifarClassCount(dir);
  if (!classes.ok()) return "";
  const int said = config->model().nb_classes();
  config->mutable_model()->set_nb_classes(*classes);
  if (said == *classes) {
    return absl::StrCat("data_set CIFAR: '", dir, "' holds CIFAR-", *classes,
                        ": model.nb_classes ", *classes);
  }
  return absl::StrCat("data_set CIFAR: '", dir, "' holds CIFAR-", *classes,
                      ": model.nb_classes set to ", *classes, " (was ", said,
                      "), as the official build_dataset takes it from the data set; the head "
                      "has ", *classes, " outputs");
}

absl::Status Validate(const ExperimentConfig& c, Mode mode) {
  std::vector<std::string> errors;
  auto check = [&errors](bool ok, auto&&... message) {
    if (!ok) errors.push_back(absl::StrCat(message...));
  };
  const auto& m = c.model();
  const auto& d = c.data();
  const auto& a = c.aug();
  const auto& o = c.optim();
  const auto& s = c.schedule();
  const auto& t = c.train();
  const auto& f = c.fcmae();
  const auto& k = c.checkpoint();

  if (absl::StatusOr<models::Variant> v = models::FindVariant(m.model()); !v.ok()) {
    errors.push_back(absl::StrCat("model.model: ", v.status().message()));
  }
  check(m.input_size() >= 32, "model.input_size: ", m.input_size(),
        " is too small; ConvNeXt V2 downsamples by 32, so it must be at least 32");
  check(m.drop_path() >= 0 && m.drop_path() < 1, "model.drop_path: ", m.drop_path(),
        " must be in [0, 1)");
  check(m.nb_classes() > 0, "model.nb_classes: ", m.nb_classes(), " must be positive");

  check(f.mask_ratio() >= 0 && f.mask_ratio() < 1, "fcmae.mask_ratio: ", f.mask_ratio(),
        " must be in [0, 1)");
  check(f.decoder_depth() >= 0, "fcmae.decoder_depth: ", f.decoder_depth(),
        " must be >= 0");
  check(f.decoder_embed_dim() > 0, "fcmae.decoder_embed_dim: ", f.decoder_embed_dim(),
        " must be positive");
  check(f.patch_size() > 0, "fcmae.patch_size: ", f.patch_size(), " must be positive");
  if (mode == Mode::kPretrain) {
    // The decoder predicts one patch per encoder output site, so a patch is the encoder's stride.
    check(f.patch_size() == 32, "fcmae.patch_size: ", f.patch_size(),
          " must be 32, the encoder's total stride (the decoder predicts one patch per site)");
    check(m.input_size() % 32 == 0, "model.input_size: ", m.input_size(),
          " is not divisible by fcmae.patch_size 32");
    const int64_t side = m.input_size() / 32;
    const auto keep = static_cast<int64_t>(static_cast<double>(side * side) *
                                           (1.0 - f.mask_ratio()));
    check(keep >= 1, "fcmae.mask_ratio: ", f.mask_ratio(), " keeps int(", side * side,
          " * (1 - mask_ratio)) = ", keep, " of the ", side * side,
          " patches of a ", m.input_size(), "-pixel input; at least one must stay visible");
    const std::initializer_list<absl::string_view> kScopes = {"sample", "batch"};
    check(OneOf(f.grn_scope(), kScopes), "fcmae.grn_scope: '", f.grn_scope(),
          "' is not one of: ", Quoted(kScopes));
    check(f.vis_images() >= 0, "fcmae.vis_images: ", f.vis_images(), " must be >= 0");
    check(f.train_subset() >= 0, "fcmae.train_subset: ", f.train_subset(), " must be >= 0");
    check(f.vis_freq() >= 0, "fcmae.vis_freq: ", f.vis_freq(),
          " must be >= 0 (0: a reconstruction PNG per epoch only)");
    check(f.visualize().empty() || f.vis_images() > 0, "fcmae.vis_images: 0 leaves nothing ",
          "for fcmae.visualize to draw");
  } else {
    check(f.visualize().empty(), "fcmae.visualize: reconstructions of a pre-training ",
          "checkpoint are drawn by pretrain, not ", ModeName(mode));
  }

  const std::initializer_list<absl::string_view> kDataSets = {"IMNET", "image_folder", "CIFAR",
                                                            "IDX", "synthetic"};
  check(OneOf(d.data_set(), kDataSets), "data.data_set: '", d.data_set(),
        "' is not one of: ", Quoted(kDataSets));
  check(d.data_set() == "synthetic" || !d.data_path().empty(),
        "data.data_path: empty; data_set ", d.data_set(), " needs a dataset folder");
  check(d.num_workers() >= 0, "data.num_workers: ", d.num_workers(), " must be >= 0");
  check(d.prefetch_batches() >= 0, "data.prefetch_batches: ", d.prefetch_batches(),
        " must be >= 0");
  check(!d.has_crop_pct() || (d.crop_pct() > 0 && d.crop_pct() <= 1), "data.crop_pct: ",
        d.crop_pct(), " must be in (0, 1]");
  check(d.synthetic_train_size() > 0, "data.synthetic_train_size: ", d.synthetic_train_size(),
        " must be positive");
  check(d.max_train_images() >= 0, "data.max_train_images: ", d.max_train_images(),
        " must be >= 0 (0: the whole training set)");
  check(d.synthetic_eval_size() > 0, "data.synthetic_eval_size: ", d.synthetic_eval_size(),
        " must be positive");

  check(a.smoothing() >= 0 && a.smoothing() < 1, "aug.smoothing: ", a.smoothing(),
        " must be in [0, 1)");
  const std::initializer_list<absl::string_view> kInterp = {"bicubic", "bilinear", "random"};
  check(OneOf(a.train_interpolation(), kInterp), "aug.train_interpolation: '",
        a.train_interpolation(), "' is not one of: ", Quoted(kInterp));
  check(a.reprob() >= 0 && a.reprob() <= 1, "aug.reprob: ", a.reprob(), " must be in [0, 1]");
  const std::initializer_list<absl::string_view> kRemode = {"pixel", "rand", "const"};
  check(OneOf(a.remode(), kRemode), "aug.remode: '", a.remode(), "' is not one of: ",
        Quoted(kRemode));
  check(a.recount() >= 1, "aug.recount: ", a.recount(), " must be >= 1");
  check(a.mixup() >= 0, "aug.mixup: ", a.mixup(), " must be >= 0");
  check(a.cutmix() >= 0, "aug.cutmix: ", a.cutmix(), " must be >= 0");
  check(a.cutmix_minmax_size() == 0 || a.cutmix_minmax_size() == 2,
        "aug.cutmix_minmax: needs two values (min max), got ", a.cutmix_minmax_size());
  check(a.mixup_prob() >= 0 && a.mixup_prob() <= 1, "aug.mixup_prob: ", a.mixup_prob(),
        " must be in [0, 1]");
  check(a.mixup_switch_prob() >= 0 && a.mixup_switch_prob() <= 1, "aug.mixup_switch_prob: ",
        a.mixup_switch_prob(), " must be in [0, 1]");
  const std::initializer_list<absl::string_view> kMixMode = {"batch", "pair", "elem"};
  check(OneOf(a.mixup_mode(), kMixMode), "aug.mixup_mode: '", a.mixup_mode(),
        "' is not one of: ", Quoted(kMixMode));
  // The full RandAugment policy is parsed by data::RandAugment when the run starts.
  check(a.aa().empty() || a.aa() == "none" || absl::StartsWith(a.aa(), "rand"), "aug.aa: '",
        a.aa(), "' is not a RandAugment policy (e.g. rand-m9-mstd0.5-inc1) or none");
  for (double v : a.cutmix_minmax()) {
    check(v > 0 && v <= 1, "aug.cutmix_minmax: ", v, " must be in (0, 1]");
  }
  check(a.cutmix_minmax_size() != 2 || a.cutmix_minmax(0) < a.cutmix_minmax(1),
        "aug.cutmix_minmax: min must be less than max");
  check((a.mixup() <= 0 && a.cutmix() <= 0 && a.cutmix_minmax_size() == 0) ||
            t.batch_size() % 2 == 0,
        "train.batch_size: ", t.batch_size(), " must be even with mixup/cutmix (samples are "
        "mixed with the flipped batch)");
  const std::initializer_list<absl::string_view> kCorrupt = {"fail", "skip"};
  check(OneOf(d.corrupt_images(), kCorrupt), "data.corrupt_images: '", d.corrupt_images(),
        "' is not one of: ", Quoted(kCorrupt));
  check(a.hflip() >= 0 && a.hflip() <= 1, "aug.hflip: ", a.hflip(), " must be in [0, 1]");
  check(!a.has_color_jitter() || a.color_jitter() >= 0, "aug.color_jitter: ", a.color_jitter(),
        " must be >= 0");

  const std::initializer_list<absl::string_view> kOpts = {"adamw", "adam", "sgd", "momentum"};
  check(OneOf(o.opt(), kOpts), "optim.opt: '", o.opt(), "' is not one of: ", Quoted(kOpts));
  check(o.opt_eps() > 0, "optim.opt_eps: ", o.opt_eps(), " must be positive");
  check(o.opt_betas_size() == 0 || o.opt_betas_size() == 2,
        "optim.opt_betas: needs two values (beta1 beta2), got ", o.opt_betas_size());
  for (double b : o.opt_betas()) {
    check(b >= 0 && b < 1, "optim.opt_betas: ", b, " must be in [0, 1)");
  }
  check(o.momentum() >= 0 && o.momentum() < 1, "optim.momentum: ", o.momentum(),
        " must be in [0, 1)");
  check(o.opt() != "sgd" || o.momentum() > 0, "optim.momentum: ", o.momentum(),
        " must be positive for opt sgd (Nesterov momentum); use opt momentum or adamw otherwise");
  check(o.weight_decay() >= 0, "optim.weight_decay: ", o.weight_decay(), " must be >= 0");
  check(!o.has_weight_decay_end() || o.weight_decay_end() >= 0, "optim.weight_decay_end: ",
        o.weight_decay_end(), " must be >= 0");
  check(!o.has_lr() || o.lr() >= 0, "optim.lr: ", o.lr(), " must be >= 0");
  check(o.blr() > 0, "optim.blr: ", o.blr(), " must be positive");
  check(o.layer_decay() > 0, "optim.layer_decay: ", o.layer_decay(), " must be positive");
  const std::initializer_list<absl::string_view> kLayerDecay = {"single", "group"};
  check(OneOf(o.layer_decay_type(), kLayerDecay), "optim.layer_decay_type: '",
        o.layer_decay_type(), "' is not one of: ", Quoted(kLayerDecay));
  check(!o.has_clip_grad() || o.clip_grad() > 0, "optim.clip_grad: ", o.clip_grad(),
        " must be positive (leave it unset for no clipping)");

  check(s.min_lr() >= 0, "schedule.min_lr: ", s.min_lr(), " must be >= 0");
  check(s.warmup_epochs() >= 0, "schedule.warmup_epochs: ", s.warmup_epochs(), " must be >= 0");
  // warmup_epochs >= epochs is allowed: the official adjust_learning_rate then warms up for the
  // whole run (the linear ramp, cut off where training ends; no cosine phase).

  check(t.batch_size() > 0, "train.batch_size: ", t.batch_size(), " must be positive");
  check(t.epochs() > 0, "train.epochs: ", t.epochs(), " must be positive");
  check(t.update_freq() >= 1, "train.update_freq: ", t.update_freq(), " must be >= 1");
  check(t.start_epoch() >= 0 && t.start_epoch() < std::max(t.epochs(), 1), "train.start_epoch: ",
        t.start_epoch(), " must be in [0, epochs)");
  const std::initializer_list<absl::string_view> kDevices = {"", "cpu", "cuda"};
  check(OneOf(t.device(), kDevices) || absl::StartsWith(t.device(), "cuda:"), "train.device: '",
        t.device(), "' is not one of: cpu, cuda, cuda:N, or empty for automatic");
  check(t.num_threads() >= 0, "train.num_threads: ", t.num_threads(), " must be >= 0");
  check(t.print_freq() > 0, "train.print_freq: ", t.print_freq(), " must be positive");
  const std::initializer_list<absl::string_view> kAmpDtypes = {"", "bfloat16", "float16"};
  check(OneOf(t.amp_dtype(), kAmpDtypes), "train.amp_dtype: '", t.amp_dtype(),
        "' is not one of: bfloat16, float16, or empty for automatic");
  check(t.amp_dtype() != "float16" || t.device() != "cpu", "train.amp_dtype: ",
        "float16 needs a CUDA device (CPU autocast supports bfloat16 only)");

  check(c.ema().model_ema_decay() >= 0 && c.ema().model_ema_decay() <= 1,
        "ema.model_ema_decay: ", c.ema().model_ema_decay(), " must be in [0, 1]");
  check(!c.ema().model_ema_eval() || c.ema().model_ema(),
        "ema.model_ema_eval: true needs ema.model_ema: true (there is no EMA to evaluate)");
  check(!c.ema().model_ema_force_cpu() || c.ema().model_ema(),
        "ema.model_ema_force_cpu: true needs ema.model_ema: true");
  check(k.save_ckpt_freq() > 0, "checkpoint.save_ckpt_freq: ", k.save_ckpt_freq(),
        " must be positive");
  check(k.save_ckpt_num() > 0, "checkpoint.save_ckpt_num: ", k.save_ckpt_num(),
        " must be positive");
  check(k.save_ckpt_steps() >= 0, "checkpoint.save_ckpt_steps: ", k.save_ckpt_steps(),
        " must be >= 0 (0: no periodic mid-epoch checkpoints)");
  check(k.preempt_lead_seconds() >= 0, "checkpoint.preempt_lead_seconds: ",
        k.preempt_lead_seconds(), " must be >= 0 (0: do not watch the Slurm time limit)");
  if (absl::StatusOr<int> sig = util::ParseSignalName(k.preempt_signal()); !sig.ok()) {
    check(false, "checkpoint.preempt_signal: ", sig.status().message());
  }
  check(!absl::StrContains(k.model_key(), "||") && !k.model_key().empty(),
        "checkpoint.model_key: '", k.model_key(), "' must be key names separated by '|'");
  check(k.resume().empty() || k.finetune().empty(), "checkpoint.resume and checkpoint.finetune ",
        "are both set: resume continues a run (all state), finetune only initializes weights");
  const std::initializer_list<absl::string_view> kEvalWeights = {"model", "ema"};
  check(OneOf(c.eval().eval_weights(), kEvalWeights), "eval.eval_weights: '",
        c.eval().eval_weights(), "' is not one of: ", Quoted(kEvalWeights));
  // As main_finetune.py: without resume, auto_resume evaluates output_dir's newest checkpoint.
  check(!c.eval().eval() || !k.resume().empty() || !k.finetune().empty() ||
            (k.auto_resume() && !c.output().output_dir().empty()),
        "eval.eval: evaluation only needs weights: set checkpoint.resume (a convnextv2 "
        "checkpoint, checkpoint-best.pth included), checkpoint.finetune (PyTorch or "
        "pre-training weights), or output.output_dir with checkpoint.auto_resume (its newest "
        "checkpoint-N.pth is evaluated)");
  check(c.eval().eval_weights() != "ema" || k.finetune().empty(),
        "eval.eval_weights: ema needs a convnextv2 checkpoint in checkpoint.resume");
  check(c.distributed().world_size() >= 1, "distributed.world_size: ",
        c.distributed().world_size(), " must be >= 1");
  check(c.distributed().dist_timeout() >= 1, "distributed.dist_timeout: ",
        c.distributed().dist_timeout(), " must be >= 1 (seconds)");
  check(c.distributed().bucket_cap_mb() >= 1, "distributed.bucket_cap_mb: ",
        c.distributed().bucket_cap_mb(), " must be >= 1 (MiB)");

  // Features whose issues have not landed yet: refuse them instead of silently ignoring them.
  auto unsupported = [&](bool used, absl::string_view what) {
    check(!used, what, " is not supported by this build yet");
  };
  if (mode == Mode::kPretrain) {
    // main_pretrain.py hard-codes AdamW without gradient clipping or layer decay.
    check(o.opt() == "adamw", "optim.opt: '", o.opt(), "' cannot be used: pretrain uses AdamW");
    check(!o.has_clip_grad(), "optim.clip_grad: pretrain does not clip gradients");
    check(o.layer_decay() == 1.0, "optim.layer_decay: ", o.layer_decay(),
          " cannot be used in pretrain (it is a fine-tuning setting)");
    unsupported(o.has_weight_decay_end(), "optim.weight_decay_end");
    unsupported(!k.finetune().empty(), "checkpoint.finetune");
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid ", ModeName(mode), " config:\n  ",
                                                 absl::StrJoin(errors, "\n  ")));
}

absl::Status CheckPaths(const ExperimentConfig& c, Mode mode) {
  const auto& d = c.data();
  if (d.data_set() == "synthetic") return absl::OkStatus();
  // pretrain --visualize reads its data settings from the checkpoint's config and checks them.
  if (mode == Mode::kPretrain && !c.fcmae().visualize().empty()) return absl::OkStatus();
  std::error_code ec;
  if (!std::filesystem::is_directory(d.data_path(), ec)) {
    return absl::NotFoundError(absl::StrCat(
        "data.data_path: '", d.data_path(), "' ",
        std::filesystem::exists(d.data_path(), ec) ? "is not a directory" : "does not exist",
        " (data_set ", d.data_set(), ")"));
  }
  if (d.has_eval_data_path() && !d.eval_data_path().empty() &&
      !std::filesystem::is_directory(d.eval_data_path(), ec)) {
    return absl::NotFoundError(
        absl::StrCat("data.eval_data_path: '", d.eval_data_path(), "' does not exist"));
  }
  return absl::OkStatus();
}

double EffectiveLr(const ExperimentConfig& c, int world_size) {
  if (c.optim().has_lr()) return c.optim().lr();
  const double eff_batch =
      static_cast<double>(c.train().batch_size()) * c.train().update_freq() * world_size;
  return c.optim().blr() * eff_batch / 256.0;
}

}  // namespace convnextv2::config
