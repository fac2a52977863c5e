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
#include "convnextv2/config/checks.h"
#include "convnextv2/config/run_checks.h"
#include "convnextv2/data/config_checks.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/models/config_checks.h"
#include "convnextv2/optim/optimizers.h"
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
  if (mode != Mode::kFinetune) return "";
  absl::StatusOr<const data::DatasetEntry*> entry = data::FindDataset(config->data().data_set());
  if (!entry.ok() || (*entry)->classes_in_files == nullptr) return "";
  const std::string& data_set = config->data().data_set();
  const std::string& dir = config->data().data_path();
  absl::StatusOr<int> classes = (*entry)->classes_in_files(dir);
  if (!classes.ok()) return "";
  const int said = config->model().nb_classes();
  config->mutable_model()->set_nb_classes(*classes);
  if (said == *classes) {
    return absl::StrCat("data_set ", data_set, ": '", dir, "' holds ", data_set, "-", *classes,
                        ": model.nb_classes ", *classes);
  }
  return absl::StrCat("data_set ", data_set, ": '", dir, "' holds ", data_set, "-", *classes,
                      ": model.nb_classes set to ", *classes, " (was ", said,
                      "), as the official build_dataset takes it from the data set; the head "
                      "has ", *classes, " outputs");
}

absl::Status Validate(const ExperimentConfig& c, Mode mode) {
  // Each package checks the settings it reads; all of them run, so every error shows at once.
  Checks checks(mode == Mode::kPretrain);
  models::CheckModelConfig(c, checks);
  data::CheckDataConfig(c, checks);
  optim::CheckOptimConfig(c, checks);
  CheckRunConfig(c, checks);
  return checks.ToStatus(absl::StrCat("invalid ", ModeName(mode), " config"));
}

absl::Status CheckPaths(const ExperimentConfig& c, Mode mode) {
  const auto& d = c.data();
  absl::StatusOr<const data::DatasetEntry*> entry = data::FindDataset(d.data_set());
  CONVNEXTV2_RETURN_IF_ERROR(entry);
  if (!(*entry)->reads_files) return absl::OkStatus();
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
