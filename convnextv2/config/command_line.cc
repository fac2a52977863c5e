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
  std::string config_arg;
  std::vector<Assignment> assignments;
  bool sets_data_path = false;

  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!IsFlag(arg)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument '", arg, "': flags start with --; see --help"));
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string name(body.substr(0, body.find('=')));
    std::optional<std::string> inline_value;
    if (body.find('=') != absl::string_view::npos) {
      inline_value = std::string(body.substr(body.find('=') + 1));
    }
    // A value following the flag, when there is one.
    auto next_value = [&]() -> absl::StatusOr<std::string> {
      if (inline_value) return *inline_value;
      if (i + 1 < argc && !IsFlag(argv[i + 1])) return std::string(argv[++i]);
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
    };
    if (name == "help" || name == "h" || name == "helpfull") {
      cl.help = true;
      continue;
    }
    if (name == "print_config") {
      cl.print_config = true;
      continue;
    }
    if (name == "config") {
      absl::StatusOr<std::string> v = next_value();
      CONVNEXTV2_RETURN_IF_ERROR(v);
      config_arg = *v;
      continue;
    }
    if (name == "set") {
      absl::StatusOr<std::string> v = next_value();
      CONVNEXTV2_RETURN_IF_ERROR(v);
      const size_t eq = v->find('=');
      if (eq == std::string::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("--set '", *v, "' is not of the form path.to.field=value"));
      }
      absl::StatusOr<std::string> path = CanonicalPath(absl::StripAsciiWhitespace(v->substr(0, eq)));
      if (!path.ok()) return absl::Status(path.status().code(), absl::StrCat("--set: ", path.status().message()));
      assignments.push_back({*path, {v->substr(eq + 1)}, true});
      sets_data_path |= *path == "data.data_path";
      continue;
    }
    absl::StatusOr<std::string> path = CanonicalPath(name);
    if (!path.ok()) {
      if (gflags_known != nullptr && gflags_known(name)) {
        cl.passthrough.push_back(std::string(arg));
        continue;
      }
      return absl::Status(path.status().code(),
                          absl::StrCat("flag --", name, ": ", path.status().message()));
    }
    const pb::FieldDescriptor* field = nullptr;
    {
      const pb::Descriptor* d = ExperimentConfig::descriptor();
      for (absl::string_view part : absl::StrSplit(*path, '.')) {
        field = d->FindFieldByName(std::string(part));
        if (field->type() == pb::FieldDescriptor::TYPE_MESSAGE) d = field->message_type();
      }
    }
    Assignment a{*path, {}, false};
    if (inline_value) {
      a.values.push_back(*inline_value);
      if (field->is_repeated()) a.list = true;
    } else if (field->is_repeated()) {
      // argparse nargs='+': every following non-flag token.
      while (i + 1 < argc && !IsFlag(argv[i + 1])) a.values.push_back(argv[++i]);
      if (a.values.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs values"));
      }
    } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL &&
               (i + 1 >= argc || IsFlag(argv[i + 1]))) {
      a.values.push_back("true");  // store_true style, e.g. --norm_pix_loss
    } else {
      absl::StatusOr<std::string> v = next_value();
      CONVNEXTV2_RETURN_IF_ERROR(v);
      a.values.push_back(*v);
    }
    sets_data_path |= *path == "data.data_path";
    assignments.push_back(std::move(a));
  }

  // The base config.
  ExperimentConfig config = ModeDefaults(mode);
  if (config_arg == "official" || (config_arg.empty() && sets_data_path)) {
    cl.base = absl::StrCat("the official ", ModeName(mode), " defaults");
  } else if (config_arg.empty() || config_arg == "default") {
    absl::StatusOr<ExperimentConfig> parsed = ParseText(builtin.text, builtin.name);
    CONVNEXTV2_RETURN_IF_ERROR(parsed);
    config.MergeFrom(*parsed);
    cl.base = absl::StrCat("the built-in default (", builtin.name, ")");
  } else {
    std::string path = config_arg;
    if (!std::filesystem::path(path).is_absolute()) {
      path = (std::filesystem::path(cl.working_dir) / path).lexically_normal().string();
    }
    absl::StatusOr<ExperimentConfig> parsed = LoadTextFile(path);
    CONVNEXTV2_RETURN_IF_ERROR(parsed);
    config.MergeFrom(*parsed);
    cl.base = path;
  }

  for (const Assignment& a : assignments) {
    absl::Status s = a.list ? SetField(a.path, a.values[0], &config)
                            : SetRepeatedField(a.path, a.values, &config);
    CONVNEXTV2_RETURN_IF_ERROR(s);
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
          ? "--visualize CHECKPOINT [--vis_output PNG] trains nothing: it writes the "
            "reconstruction PNG of\na pre-training checkpoint (base config: the one stored in "
            "it) and exits.\n"
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
