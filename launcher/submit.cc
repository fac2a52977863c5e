#include "launcher/submit.h"

#include <google/protobuf/text_format.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convnextv2/config/config.h"
#include "convnextv2/record/run_info.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/shell.h"
#include "convnextv2/util/status_macros.h"
#include "convnextv2/util/text_proto.h"
#include "launcher/sweep.h"

namespace convnextv2::launcher {
namespace {

namespace fs = std::filesystem;

std::string ProgramName(const SweepConfig& sweep) {
  return sweep.binary() == SweepConfig::PRETRAIN ? "pretrain" : "finetune";
}

absl::Status CopyExecutable(const std::string& from, const std::string& to) {
  const std::string tmp = absl::StrCat(to, ".tmp.", getpid());
  std::error_code ec;
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::permissions(tmp, fs::perms::owner_all | fs::perms::group_read |
                                    fs::perms::group_exec | fs::perms::others_read |
                                    fs::perms::others_exec, ec);
  if (!ec) fs::rename(tmp, to, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot copy ", from, " to ", to, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status WriteSweepManifest(const std::string& sweep_dir, const SweepManifest& m) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(m, &text);
  return util::WriteFileAtomically(sweep_dir + "/sweep_manifest.pbtxt", text);
}

// A task asking for more nodes than its partition has would pend forever where the cluster
// does not set EnforcePartLimits: refuse it before anything is written. Skipped (ok) when sinfo
// cannot tell.
absl::Status CheckPartitionNodes(const SlurmSettings& sl) {
  if (sl.nodes() <= 1) return absl::OkStatus();
  std::string out;
  if (util::RunShell("sinfo -h -o '%P %D' 2>/dev/null", &out) != 0) return absl::OkStatus();
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int count = 0;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &count)) continue;
    const bool is_default = absl::EndsWith(fields[0], "*");
    const std::string name(absl::StripSuffix(fields[0], "*"));
    if (sl.partition().empty() ? !is_default : name != sl.partition()) continue;
    if (sl.nodes() > count) {
      return absl::FailedPreconditionError(absl::StrCat(
          "slurm.nodes: ", sl.nodes(), " but partition '", name, "' has ", count,
          " nodes (sinfo): lower slurm.nodes or set slurm.partition to a larger partition"));
    }
  }
  return absl::OkStatus();
}

// Submits one array; returns its job id.
absl::StatusOr<std::string> Submit(const std::string& script, const std::string& extra_args,
                                   const std::string& err_file) {
  std::string out;
  const std::string command = absl::StrCat("sbatch --parsable ", extra_args,
                                           util::ShellQuote(script), " 2>",
                                           util::ShellQuote(err_file));
  const int rc = util::RunShell(command, &out);
  absl::StatusOr<std::string> err = util::ReadFile(err_file);
  const std::string stderr_text = err.ok() ? std::string(absl::StripAsciiWhitespace(*err)) : "";
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "sbatch failed (exit ", rc, ")", rc == 127 ? ": sbatch is not on PATH" : "",
        stderr_text.empty() ? "" : ": ", stderr_text, "\n  command: ", command));
  }
  // --parsable prints "jobid" or "jobid;cluster".
  const std::string id(absl::StripAsciiWhitespace(
      std::vector<std::string>(absl::StrSplit(out, ';'))[0]));
  int64_t number;
  if (!absl::SimpleAtoi(id, &number)) {
    return absl::InternalError(absl::StrCat("sbatch printed '", out, "', not a job id"));
  }
  return id;
}

}  // namespace

absl::StatusOr<std::string> FindBinary(const std::string& name) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(fs::path(self.string() + ".runfiles") / "convnextv2" / "convnextv2" / name);
    candidates.push_back(self.parent_path().parent_path() / "convnextv2" / name);
  }
  for (const fs::path& c : candidates) {
    if (fs::is_regular_file(c, ec)) return fs::canonical(c, ec).string();
  }
  return absl::NotFoundError(absl::StrCat(
      "no ", name, " binary beside the launcher (looked at ",
      candidates.empty() ? std::string("nothing") : candidates.back().string(),
      "): build it with `bazel build //convnextv2:", name, "` or pass --binary=PATH"));
}

int MaxArraySize() {
  std::string out;
  if (util::RunShell("scontrol show config 2>/dev/null", &out) != 0) return 1001;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    int value;
    if (kv.size() == 2 && absl::StripAsciiWhitespace(kv[0]) == "MaxArraySize" &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(kv[1]), &value) && value > 0) {
      return value;
    }
  }
  return 1001;
}

absl::StatusOr<SweepManifest> ReadSweepManifest(const std::string& sweep_dir) {
  const std::string path = sweep_dir + "/sweep_manifest.pbtxt";
  absl::StatusOr<std::string> text = util::ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat(sweep_dir, " is not a sweep dir: ", path,
                                            " cannot be read"));
  }
  SweepManifest m;
  CONVNEXTV2_RETURN_IF_ERROR(util::ParseTextProto(*text, path, &m));
  return m;
}

namespace {

// The binary the tasks run: --binary, else the one built beside the launcher.
absl::StatusOr<std::string> TaskBinary(const SweepConfig& sweep, const SweepOptions& options) {
  absl::StatusOr<std::string> binary = options.binary.empty()
                                           ? FindBinary(ProgramName(sweep))
                                           : absl::StatusOr<std::string>(options.binary);
  CONVNEXTV2_RETURN_IF_ERROR(binary);
  if (!fs::is_regular_file(*binary)) {
    return absl::NotFoundError(absl::StrCat("--binary ", *binary, " does not exist"));
  }
  return binary;
}

// What the sweep manifest records before the tasks: the sweep, the launcher's command line,
// where and from which commit it ran, the copied binary and its hash.
SweepManifest NewManifest(const SweepConfig& sweep, const SweepOptions& options,
                          const record::RunInfo& info, const std::string& binary,
                          const std::string& copied, const std::string& binary_bytes) {
  SweepManifest manifest;
  *manifest.mutable_sweep() = sweep;
  manifest.set_sweep_file(options.sweep_file);
  manifest.set_launcher_command_line(options.command_line);
  manifest.set_created_time(info.start_time);
  manifest.set_git_commit(info.git_commit);
  manifest.set_git_dirty(info.git_dirty);
  manifest.set_host(info.host);
  manifest.set_binary(copied);
  manifest.set_binary_sha256(record::Sha256Hex(binary_bytes));
  manifest.set_binary_source(binary);
  manifest.set_dry_run(options.dry_run);
  return manifest;
}

// Each task's resolved config in <sweep_dir>/tasks/, and its entry in the manifest.
absl::Status WriteTasks(const SweepConfig& sweep, const std::vector<SweepPoint>& points,
                        const std::string& sweep_dir, SweepManifest* manifest) {
  for (const SweepPoint& p : points) {
    SweepTask* t = manifest->add_tasks();
    t->set_index(p.index);
    t->set_name(p.name);
    t->set_config_path(absl::StrCat(sweep_dir, "/tasks/", p.name, ".pbtxt"));
    t->set_run_dir(p.config.output().output_dir());
    for (const std::string& a : p.assignments) t->add_assignments(a);
    t->set_seed(p.seed);
    const std::string header =
        absl::StrCat("# ", sweep.name(), " ", p.name, ": ",
                     p.assignments.empty() ? "base config" : absl::StrJoin(p.assignments, ", "),
                     "\n");
    CONVNEXTV2_RETURN_IF_ERROR(
        util::WriteFileAtomically(t->config_path(), header + config::ToText(p.config)));
  }
  return absl::OkStatus();
}

// Submits the script as one array, or as several of at most the cluster's MaxArraySize tasks;
// the manifest records every job id (also those submitted before a failure).
absl::Status SubmitArrays(const SweepConfig& sweep, const std::string& script_path,
                          SweepManifest* manifest, SweepResult* result) {
  const int max_array_size = MaxArraySize();
  manifest->set_max_array_size(max_array_size);
  const std::vector<std::pair<int, int>> arrays = SplitArrays(result->num_tasks, max_array_size);
  for (const auto& [first, count] : arrays) {
    std::string extra;
    if (arrays.size() > 1) {
      extra = absl::StrCat("--array=", ArraySpec(count, sweep.slurm().max_parallel()),
                           " --export=ALL,CONVNEXTV2_TASK_OFFSET=", first, " ");
    }
    absl::StatusOr<std::string> id =
        Submit(script_path, extra, result->sweep_dir + "/logs/sbatch.stderr");
    if (!id.ok()) {
      (void)WriteSweepManifest(result->sweep_dir, *manifest);  // records what was submitted
      return id.status();
    }
    result->job_ids.push_back(*id);
    manifest->add_job_ids(*id);
  }
  manifest->set_submitted_time(record::NowUtc());
  return WriteSweepManifest(result->sweep_dir, *manifest);
}

}  // namespace

absl::StatusOr<SweepResult> RunSweep(const SweepOptions& options) {
  absl::StatusOr<SweepConfig> sweep = LoadSweep(options.sweep_file);
  CONVNEXTV2_RETURN_IF_ERROR(sweep);
  SweepResult result;
  result.sweep_dir = !options.sweep_dir.empty()
                         ? options.sweep_dir
                         : (fs::path(options.work_dir) / sweep->sweep_root() / sweep->name())
                               .lexically_normal()
                               .string();
  ExpandOptions expand;
  expand.sweep_file_dir = fs::path(options.sweep_file).parent_path().string();
  expand.work_dir = options.work_dir;
  expand.sweep_dir = result.sweep_dir;
  absl::StatusOr<std::vector<SweepPoint>> points = ExpandSweep(*sweep, expand);
  if (!points.ok()) {
    return absl::Status(points.status().code(),
                        absl::StrCat(options.sweep_file, ": ", points.status().message()));
  }
  result.num_tasks = static_cast<int>(points->size());
  absl::StatusOr<std::string> binary = TaskBinary(*sweep, options);
  CONVNEXTV2_RETURN_IF_ERROR(binary);
  if (fs::exists(result.sweep_dir + "/sweep_manifest.pbtxt") && !options.force) {
    return absl::AlreadyExistsError(absl::StrCat(
        "sweep dir ", result.sweep_dir, " already exists; pick another name or --sweep_dir, or "
        "pass --force to rewrite it and submit again (finished runs stay, others resume)"));
  }
  if (!options.dry_run) CONVNEXTV2_RETURN_IF_ERROR(CheckPartitionNodes(sweep->slurm()));

  // ---- the sweep dir -------------------------------------------------------------------------
  for (const char* sub : {"tasks", "runs", "logs", "bin"}) {
    CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(result.sweep_dir + "/" + sub));
  }
  const std::string copied = result.sweep_dir + "/bin/" + ProgramName(*sweep);
  CONVNEXTV2_RETURN_IF_ERROR(CopyExecutable(*binary, copied));
  absl::StatusOr<std::string> binary_bytes = util::ReadFile(copied);
  CONVNEXTV2_RETURN_IF_ERROR(binary_bytes);
  const record::RunInfo info = record::CollectRunInfo();
  SweepManifest manifest = NewManifest(*sweep, options, info, *binary, copied, *binary_bytes);
  CONVNEXTV2_RETURN_IF_ERROR(WriteTasks(*sweep, *points, result.sweep_dir, &manifest));
  // The git commit the tasks record is read from the checkout the launcher ran in.
  const std::string source_dir =
      info.git_source.rfind("run time: git -C ", 0) == 0 ? info.git_source.substr(17)
                                                         : options.work_dir;
  result.script = SbatchScript(*sweep, result.sweep_dir, copied, result.num_tasks, source_dir,
                               info.git_commit, info.git_dirty);
  const std::string script_path = result.sweep_dir + "/sweep.sbatch";
  manifest.set_sbatch_script(script_path);
  CONVNEXTV2_RETURN_IF_ERROR(util::WriteFileAtomically(script_path, result.script));
  CONVNEXTV2_RETURN_IF_ERROR(WriteSweepManifest(result.sweep_dir, manifest));
  if (options.dry_run) return result;

  // ---- submission ----------------------------------------------------------------------------
  CONVNEXTV2_RETURN_IF_ERROR(SubmitArrays(*sweep, script_path, &manifest, &result));
  return result;
}

}  // namespace convnextv2::launcher
