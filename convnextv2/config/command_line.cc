#include "convnextv2/config/command_line.h"

#include <unistd.h>

#include <cctype>
#include <optional>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convnextv2/proto/experiment_descriptor.h"
#include "convnextv2/util/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/text_format.h"

namespace convnextv2::config {
namespace {

namespace pb = ::google::protobuf;

bool IsFlag(absl::string_view arg) {
  // "-1e-3" and "-5" are values (e.g. --warmup_steps -1), not flags.
  return arg.size() >= 2 && arg[0] == '-' &&
         !(std::isdigit(static_cast<unsigned char>(arg[1])) || arg[1] == '.');
}

struct Assignment {
  std::string path;
  std::vector<std::string> values;
  bool list = false;  // from --set: one string to split
};

// What the command line says, before any config is built.
struct Flags {
  bool help = false;
  bool print_config = false;
  std::string config_arg;
  std::vector<Assignment> assignments;
  std::vector<std::string> passthrough;  // gflags' own flags (--v, --logtostderr ...)
  bool sets_data_path = false;
};

// Walks argv one flag at a time; a flag's value is inline (--lr=1e-3) or the next argument.
class FlagReader {
 public:
  FlagReader(int argc, const char* const* argv) : argc_(argc), argv_(argv) {}

  // Moves to the next flag; false at the end. An argument that is not a flag is an error.
  absl::StatusOr<bool> Next() {
    if (++i_ >= argc_) return false;
    arg_ = argv_[i_];
    if (!IsFlag(arg_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", arg_, "': flags start with --; see --help"));
    }
    absl::string_view body = arg_.substr(arg_[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    name_ = std::string(body.substr(0, eq));
    inline_value_.reset();
    if (eq != absl::string_view::npos) inline_value_ = std::string(body.substr(eq + 1));
    return true;
  }

  const std::string& name() const { return name_; }
  absl::string_view arg() const { return arg_; }
  const std::optional<std::string>& inline_value() const { return inline_value_; }
  // Whether a value (not a flag) follows.
  bool ValueFollows() const { return i_ + 1 < argc_ && !IsFlag(argv_[i_ + 1]); }

  // The flag's one value.
  absl::StatusOr<std::string> Value() {
    if (inline_value_) return *inline_value_;
    if (ValueFollows()) return std::string(argv_[++i_]);
    return absl::InvalidArgumentError(absl::StrCat("flag --", name_, " needs a value"));
  }

  // Every following non-flag argument (argparse nargs='+').
  std::vector<std::string> Values() {
    std::vector<std::string> values;
    while (ValueFollows()) values.push_back(argv_[++i_]);
    return values;
  }

 private:
  int argc_;
  const char* const* argv_;
  int i_ = 0;
  absl::string_view arg_;
  std::string name_;
  std::optional<std::string> inline_value_;
};

// --set path.to.field=value.
absl::StatusOr<Assignment> SetAssignment(absl::string_view value) {
  const size_t eq = value.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--set '", value, "' is not of the form path.to.field=value"));
  }
  absl::StatusOr<std::string> path = CanonicalPath(absl::StripAsciiWhitespace(value.substr(0, eq)));
  if (!path.ok()) {
    return absl::Status(path.status().code(), absl::StrCat("--set: ", path.status().message()));
  }
  return Assignment{*path, {std::string(value.substr(eq + 1))}, true};
}

const pb::FieldDescriptor* LeafField(const std::string& path) {
  const pb::FieldDescriptor* field = nullptr;
  const pb::Descriptor* d = ExperimentConfig::descriptor();
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    field = d->FindFieldByName(std::string(part));
    if (field->type() == pb::FieldDescriptor::TYPE_MESSAGE) d = field->message_type();
  }
  return field;
}

// An official flag (--lr 1e-3, --opt_betas 0.9 0.999, --norm_pix_loss) for the field at `path`.
absl::StatusOr<Assignment> FieldAssignment(const std::string& path, FlagReader& flags) {
  const pb::FieldDescriptor* field = LeafField(path);
  Assignment a{path, {}, false};
  if (flags.inline_value()) {
    a.values.push_back(*flags.inline_value());
    a.list = field->is_repeated();
  } else if (field->is_repeated()) {
    a.values = flags.Values();  // argparse nargs='+'
    if (a.values.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("flag --", flags.name(), " needs values"));
    }
  } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL && !flags.ValueFollows()) {
    a.values.push_back("true");  // store_true style, e.g. --norm_pix_loss
  } else {
    CONVNEXTV2_ASSIGN_OR_RETURN(std::string value, flags.Value());
    a.values.push_back(std::move(value));
  }
  return a;
}

absl::StatusOr<Flags> ReadFlags(int argc, const char* const* argv,
                                bool (*gflags_known)(absl::string_view name)) {
  Flags out;
  FlagReader flags(argc, argv);
  for (;;) {
    CONVNEXTV2_ASSIGN_OR_RETURN(const bool more, flags.Next());
    if (!more) return out;
    const std::string& name = flags.name();
    if (name == "help" || name == "h" || name == "helpfull") {
      out.help = true;
    } else if (name == "print_config") {
      out.print_config = true;
    } else if (name == "config") {
      CONVNEXTV2_ASSIGN_OR_RETURN(out.config_arg, flags.Value());
    } else if (name == "set") {
      CONVNEXTV2_ASSIGN_OR_RETURN(const std::string value, flags.Value());
      CONVNEXTV2_ASSIGN_OR_RETURN(Assignment a, SetAssignment(value));
      out.assignments.push_back(std::move(a));
    } else if (absl::StatusOr<std::string> path = CanonicalPath(name); path.ok()) {
      CONVNEXTV2_ASSIGN_OR_RETURN(Assignment a, FieldAssignment(*path, flags));
      out.assignments.push_back(std::move(a));
    } else if (gflags_known != nullptr && gflags_known(name)) {
      out.passthrough.push_back(std::string(flags.arg()));
      continue;
    } else {
      return absl::Status(path.status().code(),
                          absl::StrCat("flag --", name, ": ", path.status().message()));
    }
    if (!out.assignments.empty() && out.assignments.back().path == "data.data_path") {
      out.sets_data_path = true;
    }
  }
}

// The config the flags apply to: the official defaults of `mode` under `--config official` (or
// when the command sets data_path, as an official command line does), else the built-in default
// or the file --config names. `base` says which, for the log.
absl::StatusOr<ExperimentConfig> BaseConfig(const Flags& flags, Mode mode,
                                            const BuiltinDefault& builtin,
                                            const std::string& working_dir, std::string* base) {
  ExperimentConfig config = ModeDefaults(mode);
  const std::string& arg = flags.config_arg;
  if (arg == "official" || (arg.empty() && flags.sets_data_path)) {
    *base = absl::StrCat("the official ", ModeName(mode), " defaults");
    return config;
  }
  if (arg.empty() || arg == "default") {
    CONVNEXTV2_ASSIGN_OR_RETURN(ExperimentConfig parsed, ParseText(builtin.text, builtin.name));
    config.MergeFrom(parsed);
    *base = absl::StrCat("the built-in default (", builtin.name, ")");
    return config;
  }
  std::string path = arg;
  if (!std::filesystem::path(path).is_absolute()) {
    path = (std::filesystem::path(working_dir) / path).lexically_normal().string();
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(ExperimentConfig parsed, LoadTextFile(path));
  config.MergeFrom(parsed);
  *base = path;
  return config;
}

}  // namespace

std::string UserWorkingDirectory() {
  if (const char* dir = std::getenv("BUILD_WORKING_DIRECTORY"); dir != nullptr && *dir) {
    return dir;
  }
  std::error_code ec;
  return std::filesystem::current_path(ec).string();
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv, Mode mode,
                                             const BuiltinDefault& builtin,
                                             bool (*gflags_known)(absl::string_view name)) {
  CommandLine cl;
  cl.working_dir = UserWorkingDirectory();
  CONVNEXTV2_ASSIGN_OR_RETURN(Flags flags, ReadFlags(argc, argv, gflags_known));
  cl.help = flags.help;
  cl.print_config = flags.print_config;
  cl.passthrough = flags.passthrough;
  CONVNEXTV2_ASSIGN_OR_RETURN(ExperimentConfig config,
                              BaseConfig(flags, mode, builtin, cl.working_dir, &cl.base));
  for (const Assignment& a : flags.assignments) {
    CONVNEXTV2_RETURN_IF_ERROR(a.list ? SetField(a.path, a.values[0], &config)
                                      : SetRepeatedField(a.path, a.values, &config));
    cl.assignments.push_back(absl::StrCat(a.path, "=", absl::StrJoin(a.values, " ")));
  }
  ResolvePaths(cl.working_dir, &config);
  if (std::string note = ResolveDataClasses(&config, mode); !note.empty()) {
    cl.notes.push_back(std::move(note));
  }
  cl.config = std::move(config);
  return cl;
}

namespace {

// Field documentation from the descriptor set embedded at build time (protoc keeps comments
// only there; the generated code's descriptors have none).
class FieldDocs {
 public:
  FieldDocs() {
    pb::FileDescriptorSet set;
    const absl::string_view bytes = proto::EmbeddedDescriptor("experiment_descriptor_set.pb");
    if (!set.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
    for (const pb::FileDescriptorProto& file : set.file()) pool_.BuildFile(file);
  }
  std::string Comment(const pb::FieldDescriptor* f) const {
    const pb::FieldDescriptor* g = pool_.FindFieldByName(f->full_name());
    pb::SourceLocation loc;
    if (g == nullptr || !g->GetSourceLocation(&loc)) return "";
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(loc.leading_comments, '\n', absl::SkipEmpty())) {
      lines.emplace_back(absl::StripAsciiWhitespace(line));
    }
    return absl::StrJoin(lines, "\n        ");
  }

 private:
  pb::DescriptorPool pool_;
};

std::string DefaultText(const pb::Message& defaults, const pb::FieldDescriptor* f) {
  const pb::Reflection* r = defaults.GetReflection();
  if (f->is_repeated()) {
    std::vector<std::string> values;
    for (int i = 0; i < r->FieldSize(defaults, f); ++i) {
      std::string v;
      pb::TextFormat::PrintFieldValueToString(defaults, f, i, &v);
      values.push_back(v);
    }
    return values.empty() ? "none" : absl::StrCat("[", absl::StrJoin(values, ", "), "]");
  }
  if (!f->has_default_value() && !r->HasField(defaults, f)) return "unset";
  std::string v;
  pb::TextFormat::PrintFieldValueToString(defaults, f, -1, &v);
  return v;
}

}  // namespace

std::string HelpText(Mode mode, absl::string_view program) {
  const absl::string_view name = ModeName(mode);
  std::string out = absl::StrCat(
      "Usage: ", program, " [--config=FILE|default|official] [--set path.to.field=value]...\n",
      "       ", std::string(program.size(), ' '),
      " [--<official flag> value]... [--print_config] [--help]\n\n",
      "With no arguments ", program, " runs its built-in default (configs/", name,
      "_default.pbtxt).\nWithout --config, a command line that sets data_path starts from the "
      "official ",
      name == "pretrain" ? "main_pretrain.py" : "main_finetune.py",
      " defaults instead,\nso commands from the official TRAINING.md run unchanged after "
      "`python ", name == "pretrain" ? "main_pretrain.py" : "main_finetune.py", "`.\n",
      "Flags and --set apply in order; relative paths resolve against the directory you ran "
      "from.\n--print_config prints the resolved config and exits.\n",
      "--noretain_freed_memory leaves glibc malloc at its defaults (by default freed memory is "
      "kept\nfor reuse, so each step's tensors do not page-fault fresh pages: 2.7x faster steps "
      "for atto\nat 32 px on a 2-core VM).\n",
      name == "pretrain"
          ? "`pretrain visualize CHECKPOINT [--vis_output PNG]` trains nothing: it writes the "
            "reconstruction\nPNG of a pre-training checkpoint (base config: the one stored in "
            "it) and exits (the older\nspelling --visualize CHECKPOINT is deprecated).\n"
          : "",
      "\nFields (official flag = the last part of the path; defaults of this program):\n");
  static const FieldDocs* const docs = new FieldDocs;
  const ExperimentConfig defaults = ModeDefaults(mode);
  const pb::Descriptor* root = ExperimentConfig::descriptor();
  for (int i = 0; i < root->field_count(); ++i) {
    const pb::FieldDescriptor* group = root->field(i);
    const pb::Message& sub = defaults.GetReflection()->GetMessage(defaults, group);
    absl::StrAppend(&out, "\n  ", group->name(), ":\n");
    const pb::Descriptor* d = group->message_type();
    for (int j = 0; j < d->field_count(); ++j) {
      const pb::FieldDescriptor* f = d->field(j);
      absl::StrAppend(&out, "    --", f->name(), "  (", group->name(), ".", f->name(), ", ",
                      f->is_repeated() ? "list of " : "", f->cpp_type_name(),
                      ", default ", DefaultText(sub, f), ")\n");
      const std::string comment = docs->Comment(f);
      if (!comment.empty()) absl::StrAppend(&out, "        ", comment, "\n");
    }
  }
  return out;
}

}  // namespace convnextv2::config
