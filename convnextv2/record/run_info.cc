#include "convnextv2/record/run_info.h"

#include <google/protobuf/stubs/common.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "convnextv2/util/shell.h"

#ifndef CONVNEXTV2_BUILD_MODE
#define CONVNEXTV2_BUILD_MODE "unknown"
#endif

namespace convnextv2::record {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

void ReadGit(RunInfo* info) {
  // A sweep's tasks run a copy of the binary made when the sweep was written: the commit of
  // that moment describes it better than the checkout's state when the task starts.
  if (const std::string commit = Env("CONVNEXTV2_GIT_COMMIT"); !commit.empty()) {
    info->git_commit = commit;
    info->git_dirty = Env("CONVNEXTV2_GIT_DIRTY") == "1";
    info->git_source = "launcher: the checkout's commit when the sweep was written";
    return;
  }
  std::string cwd;
  if (char* d = getcwd(nullptr, 0)) {
    cwd = d;
    std::free(d);
  }
  for (const std::string& dir :
       {Env("CONVNEXTV2_SOURCE_DIR"), Env("BUILD_WORKSPACE_DIRECTORY"), cwd}) {
    if (dir.empty()) continue;
    const std::string git = "git -C " + util::ShellQuote(dir);
    std::string commit, status;
    if (util::RunShell(git + " rev-parse HEAD 2>/dev/null", &commit) != 0) continue;
    info->git_commit = std::string(absl::StripAsciiWhitespace(commit));
    info->git_dirty =
        util::RunShell(git + " status --porcelain --untracked-files=no 2>/dev/null", &status) != 0 ||
        !absl::StripAsciiWhitespace(status).empty();
    info->git_source = "run time: git -C " + dir;
    return;
  }
  info->git_commit = "unknown";
  info->git_source =
      "unknown: no git checkout at $CONVNEXTV2_SOURCE_DIR, $BUILD_WORKSPACE_DIRECTORY or the "
      "current directory";
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) absl::StrAppendFormat(&hex, "%02x", digest[i]);
  return hex;
}

std::string NowUtc() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

SlurmIds SlurmFromEnvironment() {
  SlurmIds ids;
  ids.job_id = Env("SLURM_JOB_ID");
  ids.array_job_id = Env("SLURM_ARRAY_JOB_ID");
  ids.array_task_id = Env("SLURM_ARRAY_TASK_ID");
  ids.restart_count = Env("SLURM_RESTART_COUNT");
  ids.node_list = Env("SLURM_JOB_NODELIST");
  ids.procid = Env("SLURM_PROCID");
  ids.ntasks = Env("SLURM_NTASKS");
  return ids;
}

RunInfo CollectRunInfo() {
  RunInfo info;
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) info.host = host;
  info.slurm = SlurmFromEnvironment();
  ReadGit(&info);
  info.build_mode = CONVNEXTV2_BUILD_MODE;
  info.start_time = NowUtc();
  info.library_versions["protobuf"] =
      google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION);
  info.library_versions["hdf5"] = H5_VERSION;
#ifdef ABSL_LTS_RELEASE_VERSION
  info.library_versions["abseil"] = absl::StrCat(ABSL_LTS_RELEASE_VERSION);
#endif
  return info;
}

}  // namespace convnextv2::record
