#include "convnextv2/binary_main.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "convnextv2/config/command_line.h"
#include "convnextv2/default_configs.h"
#include "convnextv2/util/malloc_tuning.h"

DEFINE_bool(retain_freed_memory, true,
            "keep freed memory in the process for reuse (glibc M_MMAP_MAX=0, "
            "M_TRIM_THRESHOLD=max) instead of returning it to the kernel; false leaves glibc's "
            "defaults (or GLIBC_TUNABLES) alone");

namespace convnextv2 {
namespace {

// A flag of gflags' (glog's --v, --retain_freed_memory ...), also in its --noflag form for
// booleans.
bool IsBoolFlag(absl::string_view name) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info) && info.type == "bool";
}

bool GflagsKnows(absl::string_view name) {
  gflags::CommandLineFlagInfo info;
  if (gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info)) return true;
  return absl::ConsumePrefix(&name, "no") && IsBoolFlag(name);
}

// gflags reads --noflag=VALUE as --noflag whatever VALUE says; refuse it instead.
absl::Status CheckNegatedBooleans(const std::vector<std::string>& passthrough) {
  for (const std::string& arg : passthrough) {
    const absl::string_view body = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
    const size_t eq = body.find('=');
    absl::string_view name = body.substr(0, eq);
    if (eq == absl::string_view::npos || !absl::ConsumePrefix(&name, "no") || !IsBoolFlag(name)) {
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat("flag ", arg, ": --no", name,
                                                   " takes no value; write --", name,
                                                   "=true or --", name, "=false"));
  }
  return absl::OkStatus();
}

int Fail(const std::string& name, int code, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", name.c_str(), std::string(status.message()).c_str());
  return code;
}

}  // namespace

int BinaryMain(int argc, char** argv, config::Mode mode, const std::string& name,
               const RunFunction& run) {
  namespace cfg = convnextv2::config;
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  // ---- configuration -------------------------------------------------------------------------
  const std::string file = absl::StrCat(name, "_default.pbtxt");
  const std::string shown = absl::StrCat("configs/", file);
  const cfg::BuiltinDefault builtin{shown, EmbeddedConfig(file)};
  absl::StatusOr<cfg::CommandLine> cl =
      cfg::ParseCommandLine(argc, argv, mode, builtin, GflagsKnows);
  if (!cl.ok()) return Fail(name, 2, cl.status());
  if (cl->help) {
    std::fputs(cfg::HelpText(mode, name).c_str(), stdout);
    return 0;
  }
  if (absl::Status s = CheckNegatedBooleans(cl->passthrough); !s.ok()) return Fail(name, 2, s);
  if (!cl->passthrough.empty()) {
    std::vector<char*> args = {argv[0]};
    for (std::string& a : cl->passthrough) args.push_back(a.data());
    int n = static_cast<int>(args.size());
    char** p = args.data();
    gflags::ParseCommandLineNonHelpFlags(&n, &p, /*remove_flags=*/false);
  }
  if (absl::Status s = cfg::Validate(cl->config, mode); !s.ok()) return Fail(name, 2, s);
  if (cl->print_config) {
    std::fputs(cfg::ToText(cl->config).c_str(), stdout);
    return 0;
  }
  if (absl::Status s = cfg::CheckPaths(cl->config, mode); !s.ok()) return Fail(name, 2, s);
  const std::string malloc_setting = util::RetainFreedMemory(FLAGS_retain_freed_memory);
  LOG(INFO) << malloc_setting;
  LOG(INFO) << "config: " << cl->base << (cl->assignments.empty() ? "" : " with ")
            << absl::StrJoin(cl->assignments, ", ");
  for (const std::string& note : cl->notes) LOG(INFO) << note;

  // ---- run -----------------------------------------------------------------------------------
  std::vector<std::string> args(argv, argv + argc);
  absl::StatusOr<int> exit_status = run(cl->config, absl::StrJoin(args, " "));
  if (!exit_status.ok()) return Fail(name, 1, exit_status.status());
  return *exit_status;
}

}  // namespace convnextv2
