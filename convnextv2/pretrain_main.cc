// pretrain: FCMAE pre-training of ConvNeXt V2 (main_pretrain.py of the official code).
//
//   bazel run //convnextv2:pretrain                   # built-in default: atto, Fashion-MNIST 128 px
//   bazel run //convnextv2:pretrain -- --output_dir /tmp/pt --epochs 2
//   bazel run //convnextv2:pretrain -- --model convnextv2_base --mask_ratio 0.6 ...  (official)
//   bazel run //convnextv2:pretrain -- --help
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>

#include "absl/strings/str_join.h"
#include "convnextv2/config/command_line.h"
#include "convnextv2/config/config.h"
#include "convnextv2/default_configs.h"
#include "convnextv2/engine/pretrain.h"

namespace {

bool GflagsKnows(absl::string_view name) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(std::string(name).c_str(), &info);
}

int Fail(int code, const absl::Status& status) {
  std::fprintf(stderr, "pretrain: %s\n", std::string(status.message()).c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cfg = convnextv2::config;
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);

  // ---- configuration -------------------------------------------------------------------------
  const cfg::BuiltinDefault builtin{
      "configs/pretrain_default.pbtxt",
      convnextv2::EmbeddedConfig("pretrain_default.pbtxt")};
  absl::StatusOr<cfg::CommandLine> cl =
      cfg::ParseCommandLine(argc, argv, cfg::Mode::kPretrain, builtin, GflagsKnows);
  if (!cl.ok()) return Fail(2, cl.status());
  if (cl->help) {
    std::fputs(cfg::HelpText(cfg::Mode::kPretrain, "pretrain").c_str(), stdout);
    return 0;
  }
  if (!cl->passthrough.empty()) {
    std::vector<char*> args = {argv[0]};
    for (std::string& a : cl->passthrough) args.push_back(a.data());
    int n = static_cast<int>(args.size());
    char** p = args.data();
    gflags::ParseCommandLineNonHelpFlags(&n, &p, /*remove_flags=*/false);
  }
  if (absl::Status s = cfg::Validate(cl->config, cfg::Mode::kPretrain); !s.ok()) {
    return Fail(2, s);
  }
  if (cl->print_config) {
    std::fputs(cfg::ToText(cl->config).c_str(), stdout);
    return 0;
  }
  if (absl::Status s = cfg::CheckPaths(cl->config, cfg::Mode::kPretrain); !s.ok()) {
    return Fail(2, s);
  }
  LOG(INFO) << "config: " << cl->base
            << (cl->assignments.empty() ? "" : " with ")
            << absl::StrJoin(cl->assignments, ", ");

  // ---- run -----------------------------------------------------------------------------------
  std::vector<std::string> args(argv, argv + argc);
  absl::StatusOr<convnextv2::engine::PretrainResult> result =
      convnextv2::engine::RunPretrain(cl->config, {absl::StrJoin(args, " ")});
  if (!result.ok()) return Fail(1, result.status());
  return 0;
}
