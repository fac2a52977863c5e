#include "launcher/sweep.h"

#include <csignal>
#include <filesystem>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "convnextv2/dist/time_limit.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/shell.h"
#include "convnextv2/util/signals.h"
#include "convnextv2/util/status_macros.h"
#include "convnextv2/util/text_proto.h"

namespace convnextv2::launcher {
namespace {

bool IsSimpleName(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

// Problems of the sweep itself (not of its points).
std::vector<std::string> CheckSweep(const SweepConfig& s) {
  std::vector<std::string> errors;
  if (!IsSimpleName(s.name())) {
    errors.push_back(absl::StrCat("name '", s.name(),
                                  "' must be non-empty letters, digits, '_', '-' or '.'"));
  }
  if (s.base_case() == SweepConfig::BASE_NOT_SET) {
    errors.push_back("no base config: set base_config { ... } or base_config_path");
  }
  std::set<std::string> seen;
  for (int i = 0; i < s.axis_size(); ++i) {
    const SweepAxis& a = s.axis(i);
    const std::string label = absl::StrCat("axis ", i, " (", a.field(), ")");
    absl::StatusOr<std::string> path = config::CanonicalPath(a.field());
    if (!path.ok()) {
      errors.push_back(absl::StrCat(label, ": ", path.status().message()));
      continue;
    }
    if (!seen.insert(*path).second) errors.push_back(absl::StrCat(label, ": field swept twice"));
    if (*path == "output.output_dir") {
      errors.push_back(absl::StrCat(label, ": each task gets its own output_dir; do not sweep it"));
    }
    if (a.values_size() == 0) errors.push_back(absl::StrCat(label, ": no values"));
    for (const std::string& v : a.values()) {
      ExperimentConfig probe;
      if (absl::Status st = config::SetField(*path, v, &probe); !st.ok()) {
        errors.push_back(absl::StrCat(label, ": value '", v, "': ", st.message()));
      }
    }
    if (s.combine() == SweepConfig::ZIP && a.values_size() != s.axis(0).values_size()) {
      errors.push_back(absl::StrCat(label, ": ", a.values_size(), " values but axis 0 has ",
                                    s.axis(0).values_size(), " (combine: ZIP needs equal lengths)"));
    }
  }
  if (s.repeats() < 1) errors.push_back(absl::StrCat("repeats: ", s.repeats(), " must be >= 1"));
  if (s.seeds_size() > 0 && s.seeds_size() != s.repeats()) {
    errors.push_back(absl::StrCat("seeds: ", s.seeds_size(), " seeds for ", s.repeats(),
                                  " repeats (give one per repeat, or none)"));
  }
  const SlurmSettings& sl = s.slurm();
  if (sl.nodes() < 1) errors.push_back(absl::StrCat("slurm.nodes: ", sl.nodes(), " must be >= 1"));
  if (sl.ntasks_per_node() < 1) {
    errors.push_back(absl::StrCat("slurm.ntasks_per_node: ", sl.ntasks_per_node(), " must be >= 1"));
  }
  // Data-parallel runs take one GPU per process (the binaries check it again at start).
  if (sl.gpus_per_node() > 0 && sl.ntasks_per_node() > sl.gpus_per_node()) {
    errors.push_back(absl::StrCat("slurm.ntasks_per_node: ", sl.ntasks_per_node(),
                                  " processes per node but gpus_per_node is ", sl.gpus_per_node(),
                                  ": one process per GPU"));
  }
  if (sl.gpus_per_node() < 0 || sl.cpus_per_task() < 0 || sl.max_parallel() < 0 ||
      sl.signal_lead_seconds() < 0) {
    errors.push_back("slurm: gpus_per_node, cpus_per_task, max_parallel and "
                     "signal_lead_seconds must not be negative");
  }
  // The binaries must handle the signal (each task's preempt_signal is set to it).
  if (absl::StatusOr<int> sig = util::ParseSignalName(sl.signal()); !sig.ok() || *sig == 0) {
    errors.push_back(absl::StrCat("slurm.signal '", sl.signal(),
                                  "' is not a signal name (TERM, USR2, HUP, INT, ...)"));
  }
  if (sl.has_time()) {
    absl::StatusOr<std::optional<int64_t>> limit = dist::ParseSlurmTime(sl.time());
    if (!limit.ok()) {
      errors.push_back(absl::StrCat("slurm.time: ", limit.status().message()));
    } else if (limit->has_value() && **limit <= sl.signal_lead_seconds()) {
      errors.push_back(absl::StrCat("slurm.signal_lead_seconds: ", sl.signal_lead_seconds(),
                                    " s is not shorter than the time limit ", sl.time(), " (",
                                    **limit, " s): every task would stop at once"));
    }
  }
  return errors;
}

// The axis values of each grid/zip point: indices into each axis' values.
std::vector<std::vector<int>> Combinations(const SweepConfig& s) {
  std::vector<std::vector<int>> out;
  if (s.axis_size() == 0) return {{}};
  if (s.combine() == SweepConfig::ZIP) {
    for (int v = 0; v < s.axis(0).values_size(); ++v) out.push_back(std::vector<int>(s.axis_size(), v));
    return out;
  }
  std::vector<int> current(s.axis_size(), 0);
  while (true) {
    out.push_back(current);
    int a = s.axis_size() - 1;  // the last axis varies fastest
    while (a >= 0 && ++current[a] == s.axis(a).values_size()) current[a--] = 0;
    if (a < 0) return out;
  }
}

}  // namespace

absl::StatusOr<SweepConfig> LoadSweep(const std::string& path) {
  absl::StatusOr<std::string> text = util::ReadFile(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("sweep file ", path, " cannot be read: ",
                                            text.status().message()));
  }
  SweepConfig sweep;
  CONVNEXTV2_RETURN_IF_ERROR(util::ParseTextProto(*text, path, &sweep));
  return sweep;
}

config::Mode SweepMode(const SweepConfig& sweep) {
  return sweep.binary() == SweepConfig::PRETRAIN ? config::Mode::kPretrain
                                                 : config::Mode::kFinetune;
}

std::string TaskName(int index) { return absl::StrFormat("task_%03d", index); }

absl::StatusOr<std::vector<SweepPoint>> ExpandSweep(const SweepConfig& sweep,
                                                    const ExpandOptions& options) {
  std::vector<std::string> errors = CheckSweep(sweep);
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid sweep '", sweep.name(), "':\n  ", absl::StrJoin(errors, "\n  ")));
  }
  const config::Mode mode = SweepMode(sweep);
  ExperimentConfig base = config::ModeDefaults(mode);
  if (sweep.has_base_config()) {
    base.MergeFrom(sweep.base_config());
  } else {
    std::filesystem::path p(sweep.base_config_path());
    if (p.is_relative()) p = std::filesystem::path(options.sweep_file_dir) / p;
    absl::StatusOr<ExperimentConfig> loaded = config::LoadTextFile(p.string());
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(),
                          absl::StrCat("base_config_path: ", loaded.status().message()));
    }
    base.MergeFrom(*loaded);
  }
  for (const std::string& assignment : sweep.set()) {
    if (absl::Status s = config::ApplyOverride(assignment, &base); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("set '", assignment, "': ", s.message()));
    }
  }

  std::vector<SweepPoint> points;
  for (const std::vector<int>& combination : Combinations(sweep)) {
    for (int r = 0; r < sweep.repeats(); ++r) {
      SweepPoint point;
      point.index = static_cast<int>(points.size());
      point.name = TaskName(point.index);
      point.config = base;
      for (int a = 0; a < sweep.axis_size(); ++a) {
        const std::string path = *config::CanonicalPath(sweep.axis(a).field());
        const std::string& value = sweep.axis(a).values(combination[a]);
        // Checked by CheckSweep on an empty config; cannot fail here.
        (void)config::SetField(path, value, &point.config);
        point.assignments.push_back(absl::StrCat(path, "=", value));
      }
      point.seed = sweep.seeds_size() > 0 ? sweep.seeds(r) : base.train().seed() + r;
      if (sweep.repeats() > 1 || sweep.seeds_size() > 0) {
        point.config.mutable_train()->set_seed(point.seed);
        point.assignments.push_back(absl::StrCat("train.seed=", point.seed));
      } else {
        point.seed = point.config.train().seed();
      }
      // Each task saves and exits 75 on the signal Slurm sends (SIGTERM is always handled),
      // and when the time limit is as near as that signal's lead (clusters may not send it).
      if (absl::StatusOr<int> sig = util::ParseSignalName(sweep.slurm().signal());
          sig.ok() && *sig != SIGTERM) {
        const std::string name = absl::AsciiStrToUpper(sweep.slurm().signal());
        point.config.mutable_checkpoint()->set_preempt_signal(
            absl::StrCat("SIG", absl::StripPrefix(name, "SIG")));
      }
      if (!point.config.checkpoint().has_preempt_lead_seconds()) {
        point.config.mutable_checkpoint()->set_preempt_lead_seconds(
            sweep.slurm().signal_lead_seconds());
      }
      config::ResolvePaths(options.work_dir, &point.config);
      point.config.mutable_output()->set_output_dir(
          absl::StrCat(options.sweep_dir, "/runs/", point.name));
      absl::Status valid = config::Validate(point.config, mode);
      if (valid.ok() && options.check_paths) valid = config::CheckPaths(point.config, mode);
      if (!valid.ok()) {
        errors.push_back(absl::StrCat(point.name, " (", absl::StrJoin(point.assignments, ", "),
                                      "): ", valid.message()));
      }
      points.push_back(std::move(point));
    }
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("sweep '", sweep.name(), "': ", errors.size(),
                                                   " of ", points.size(), " tasks are invalid:\n",
                                                   absl::StrJoin(errors, "\n")));
  }
  return points;
}

std::string ArraySpec(int count, int max_parallel) {
  std::string spec = absl::StrCat("0-", count - 1);
  if (max_parallel > 0) absl::StrAppend(&spec, "%", max_parallel);
  return spec;
}

std::vector<std::pair<int, int>> SplitArrays(int num_tasks, int max_array_size) {
  std::vector<std::pair<int, int>> arrays;
  const int size = std::max(1, max_array_size);
  for (int first = 0; first < num_tasks; first += size) {
    arrays.emplace_back(first, std::min(size, num_tasks - first));
  }
  return arrays;
}

std::string SbatchScript(const SweepConfig& sweep, const std::string& sweep_dir,
                         const std::string& binary, int num_tasks, const std::string& source_dir,
                         const std::string& git_commit, bool git_dirty) {
  const SlurmSettings& sl = sweep.slurm();
  std::string s = "#!/bin/bash\n";
  absl::StrAppend(&s, "# Sweep '", sweep.name(), "': ", num_tasks,
                  " tasks. Written by `launcher sweep`; submitted with sbatch --parsable.\n");
  auto directive = [&s](absl::string_view line) { absl::StrAppend(&s, "#SBATCH ", line, "\n"); };
  directive(absl::StrCat("--job-name=", sweep.name()));
  directive(absl::StrCat("--array=", ArraySpec(num_tasks, sl.max_parallel())));
  directive(absl::StrCat("--output=", sweep_dir, "/logs/%A_%a.out"));
  directive("--open-mode=append");
  directive("--requeue");
  directive(absl::StrCat("--signal=", sl.signal(), "@", sl.signal_lead_seconds()));
  directive(absl::StrCat("--nodes=", sl.nodes()));
  directive(absl::StrCat("--ntasks-per-node=", sl.ntasks_per_node()));
  if (sl.gpus_per_node() > 0) directive(absl::StrCat("--gpus-per-node=", sl.gpus_per_node()));
  if (sl.cpus_per_task() > 0) directive(absl::StrCat("--cpus-per-task=", sl.cpus_per_task()));
  if (!sl.partition().empty()) directive(absl::StrCat("--partition=", sl.partition()));
  if (!sl.account().empty()) directive(absl::StrCat("--account=", sl.account()));
  if (!sl.qos().empty()) directive(absl::StrCat("--qos=", sl.qos()));
  if (!sl.time().empty()) directive(absl::StrCat("--time=", sl.time()));
  if (!sl.mem().empty()) directive(absl::StrCat("--mem=", sl.mem()));
  for (const std::string& extra : sl.extra_sbatch_args()) directive(extra);
  absl::StrAppend(&s, R"SH(
set -uo pipefail
# A sweep larger than the cluster's MaxArraySize is submitted as several arrays, each with
# CONVNEXTV2_TASK_OFFSET set to the index of its first task.
TASK=$(( SLURM_ARRAY_TASK_ID + ${CONVNEXTV2_TASK_OFFSET:-0} ))
TASK_NAME=$(printf 'task_%03d' "$TASK")
)SH");
  absl::StrAppend(&s, "SWEEP_DIR=", util::ShellQuote(sweep_dir), "\n");
  absl::StrAppend(&s, "BINARY=", util::ShellQuote(binary), "\n");
  // The binaries read the git commit of this checkout for their manifests.
  absl::StrAppend(&s, "export CONVNEXTV2_SOURCE_DIR=", util::ShellQuote(source_dir), "\n");
  if (!git_commit.empty() && git_commit != "unknown") {
    absl::StrAppend(&s, "export CONVNEXTV2_GIT_COMMIT=", util::ShellQuote(git_commit),
                    " CONVNEXTV2_GIT_DIRTY=", git_dirty ? 1 : 0, "\n");
  }
  absl::StrAppend(&s, R"SH(
echo "launcher: $TASK_NAME (job ${SLURM_JOB_ID}, array ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}, restart ${SLURM_RESTART_COUNT:-0}) on $(hostname) at $(date -u +%FT%TZ)"
# Rank 0's host for every rank: the address Slurm itself uses for the allocation's first node
# (NodeAddr), which resolves wherever slurmd does, even where node names are not in DNS.
FIRST_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
NODE_ADDR=$(scontrol show node "$FIRST_NODE" 2>/dev/null | sed -n 's/.*NodeAddr=\([^ ]*\).*/\1/p')
if [[ -n $NODE_ADDR ]]; then
  export MASTER_ADDR=$NODE_ADDR
  echo "launcher: nodes $SLURM_JOB_NODELIST; rank 0 on $FIRST_NODE at MASTER_ADDR=$MASTER_ADDR"
fi
# The task's config names its own output dir ($SWEEP_DIR/runs/$TASK_NAME, never per attempt), so
# a requeued task resumes into the same place.
srun --kill-on-bad-exit=1 "$BINARY" --config="$SWEEP_DIR/tasks/$TASK_NAME.pbtxt"
rc=$?
if [[ $rc -eq 75 ]]; then
  # 75 (EX_TEMPFAIL): the binary saved a checkpoint, on the signal or because the job's time
  # limit was within signal_lead_seconds, and has work left. Requeue this array task by its
  # array id: the last task's SLURM_JOB_ID equals the array's id and would requeue every task.
  echo "launcher: $TASK_NAME exited 75 (checkpointed before the end): requeueing ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
echo "launcher: $TASK_NAME exited $rc at $(date -u +%FT%TZ)"
exit $rc
)SH");
  return s;
}

}  // namespace convnextv2::launcher
