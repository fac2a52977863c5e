// launcher: Slurm job arrays from protobuf sweeps, their status, reports and reproduction.
//
//   launcher sweep [--dry_run] [--force] [--binary=PATH] [--sweep_dir=DIR] SWEEP.pbtxt
//   launcher status SWEEP_DIR
//   launcher report [--sort=acc1|acc5|loss] [--format=text|csv|markdown] SWEEP_DIR
//   launcher reproduce [--out_dir=DIR] [--binary=PATH] RUN_DIR
//   launcher compare RUN_A RUN_B
//   launcher --help
//
// Links protobuf, the config library and the HDF5 reader, not libtorch: it runs on login nodes.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convnextv2/config/command_line.h"
#include "convnextv2/config/config.h"
#include "convnextv2/util/files.h"
#include "launcher/report.h"
#include "launcher/report_html.h"
#include "launcher/reproduce.h"
#include "launcher/status.h"
#include "launcher/submit.h"
#include "launcher/sweep.h"

namespace {

namespace fs = std::filesystem;
using convnextv2::launcher::SweepOptions;

constexpr char kUsage[] = R"(launcher: Slurm job arrays from protobuf sweeps (see docs/slurm.md).

  launcher sweep [flags] SWEEP.pbtxt
      Expands the SweepConfig (launcher/sweep.proto) into one ExperimentConfig per task (grid or
      zip of the axes, times repeats with their seeds), validates every task with the
      binaries' own validator, writes the sweep dir and submits one job array:
        <sweep_dir>/tasks/task_NNN.pbtxt   resolved config of each task
        <sweep_dir>/runs/task_NNN/         each task's output_dir (manifest.pbtxt, metrics.h5)
        <sweep_dir>/logs/%A_%a.out         Slurm output of each task
        <sweep_dir>/bin/<binary>           copy of the binary the tasks run
        <sweep_dir>/sweep.sbatch           the array script
        <sweep_dir>/sweep_manifest.pbtxt   the sweep, its tasks, git commit, job ids
      flags:
        --dry_run         write everything and print the script; submit nothing
        --force           rewrite an existing sweep dir and submit again (runs resume in place)
        --binary=PATH     the finetune/pretrain binary (default: the one built beside launcher)
        --sweep_dir=DIR   the sweep dir (default: <sweep_root>/<name> under the current dir)

  launcher status SWEEP_DIR
      Per task: Slurm state (squeue), attempts, epochs done and the last metrics.

  launcher report [--sort=acc1|acc5|loss] [--format=text|csv|markdown] SWEEP_DIR
      The swept values against final and best acc1, acc5 and eval loss of every task, sorted
      by the best --sort metric (default acc1), printed in --format (default text). Also
      writes SWEEP_DIR/report.{txt,csv,md,html}; the HTML page draws each task's train loss
      and eval acc1 curves.

  launcher reproduce [--out_dir=DIR] [--binary=PATH] RUN_DIR
      Runs the config recorded in RUN_DIR/manifest.pbtxt again (here, not on Slurm) into DIR
      (default RUN_DIR.reproduced) and compares the two metrics.h5 row by row, timing columns
      excepted. On the CPU they must be bitwise equal; exits 1 and lists the first differences
      when they are not.

  launcher compare RUN_A RUN_B
      Compares the metrics.h5 of two run dirs as reproduce does (e.g. a run that was
      preempted and requeued against one that was not); exits 1 when they differ.

Relative paths resolve against the directory you ran the command from (BUILD_WORKING_DIRECTORY
under `bazel run //launcher -- ...`). Slurm's client commands must be on PATH (and SLURM_CONF
set if your cluster needs it).
)";

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "launcher: %s\n", std::string(message).c_str());
  return code;
}

std::string Absolute(const std::string& path, const std::string& work_dir) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(work_dir) / p;
  return p.lexically_normal().string();
}

int Sweep(const std::vector<std::string>& args, const std::string& command_line) {
  SweepOptions options;
  options.work_dir = convnextv2::config::UserWorkingDirectory();
  options.command_line = command_line;
  std::string file;
  for (const std::string& a : args) {
    if (a == "--dry_run") {
      options.dry_run = true;
    } else if (a == "--force") {
      options.force = true;
    } else if (absl::StartsWith(a, "--binary=")) {
      options.binary = Absolute(a.substr(9), options.work_dir);
    } else if (absl::StartsWith(a, "--sweep_dir=")) {
      options.sweep_dir = Absolute(a.substr(12), options.work_dir);
    } else if (absl::StartsWith(a, "-")) {
      return Fail(2, absl::StrCat("unknown flag '", a, "' for sweep (see launcher --help)"));
    } else if (file.empty()) {
      file = Absolute(a, options.work_dir);
    } else {
      return Fail(2, "sweep takes one SWEEP.pbtxt");
    }
  }
  if (file.empty()) return Fail(2, "usage: launcher sweep [flags] SWEEP.pbtxt (see --help)");
  options.sweep_file = file;
  absl::StatusOr<convnextv2::launcher::SweepResult> result =
      convnextv2::launcher::RunSweep(options);
  if (!result.ok()) {
    return Fail(absl::IsInvalidArgument(result.status()) || absl::IsNotFound(result.status()) ||
                        absl::IsAlreadyExists(result.status())
                    ? 2
                    : 1,
                result.status().message());
  }
  if (options.dry_run) {
    std::fputs(result->script.c_str(), stdout);
    std::fprintf(stderr, "launcher: dry run: %d tasks written to %s; nothing submitted\n",
                 result->num_tasks, result->sweep_dir.c_str());
  } else {
    std::printf("submitted %s (%d tasks) from %s\n", absl::StrJoin(result->job_ids, ",").c_str(),
                result->num_tasks, result->sweep_dir.c_str());
  }
  return 0;
}

int Report(const std::vector<std::string>& args) {
  namespace l = convnextv2::launcher;
  std::string sort = "acc1", format = "text", dir;
  for (const std::string& a : args) {
    if (absl::StartsWith(a, "--sort=")) {
      sort = a.substr(7);
    } else if (absl::StartsWith(a, "--format=")) {
      format = a.substr(9);
    } else if (absl::StartsWith(a, "-") || !dir.empty()) {
      return Fail(2, "usage: launcher report [--sort=acc1|acc5|loss] "
                     "[--format=text|csv|markdown] SWEEP_DIR");
    } else {
      dir = Absolute(a, convnextv2::config::UserWorkingDirectory());
    }
  }
  if (dir.empty()) return Fail(2, "usage: launcher report [flags] SWEEP_DIR");
  if (format != "text" && format != "csv" && format != "markdown") {
    return Fail(2, absl::StrCat("--format=", format, ": text, csv or markdown"));
  }
  absl::StatusOr<l::SweepManifest> manifest = l::ReadSweepManifest(dir);
  if (!manifest.ok()) return Fail(1, manifest.status().message());
  std::vector<l::TaskSummary> tasks = l::SummarizeTasks(*manifest, /*show_progress=*/true);
  if (absl::Status s = l::SortTasks(sort, &tasks); !s.ok()) return Fail(2, s.message());
  const std::string text = l::ReportTable(*manifest, tasks, l::TableFormat::kText);
  const std::string csv = l::ReportTable(*manifest, tasks, l::TableFormat::kCsv);
  const std::string md = l::ReportTable(*manifest, tasks, l::TableFormat::kMarkdown);
  for (const auto& [name, contents] :
       std::vector<std::pair<std::string, std::string>>{{"report.txt", text},
                                                        {"report.csv", csv},
                                                        {"report.md", md},
                                                        {"report.html", l::ReportHtml(*manifest, tasks)}}) {
    if (absl::Status s = convnextv2::util::WriteFileAtomically(dir + "/" + name, contents);
        !s.ok()) {
      return Fail(1, s.message());
    }
  }
  std::fputs((format == "csv" ? csv : format == "markdown" ? md : text).c_str(), stdout);
  return 0;
}

int Reproduce(const std::vector<std::string>& args) {
  const std::string work_dir = convnextv2::config::UserWorkingDirectory();
  convnextv2::launcher::ReproduceOptions options;
  for (const std::string& a : args) {
    if (absl::StartsWith(a, "--out_dir=")) {
      options.out_dir = Absolute(a.substr(10), work_dir);
    } else if (absl::StartsWith(a, "--binary=")) {
      options.binary = Absolute(a.substr(9), work_dir);
    } else if (absl::StartsWith(a, "-") || !options.run_dir.empty()) {
      return Fail(2, "usage: launcher reproduce [--out_dir=DIR] [--binary=PATH] RUN_DIR");
    } else {
      options.run_dir = Absolute(a, work_dir);
    }
  }
  if (options.run_dir.empty()) {
    return Fail(2, "usage: launcher reproduce [--out_dir=DIR] [--binary=PATH] RUN_DIR");
  }
  options.show_progress = true;
  absl::StatusOr<convnextv2::launcher::ReproduceResult> r =
      convnextv2::launcher::Reproduce(options);
  if (!r.ok()) return Fail(1, r.status().message());
  if (r->differences.empty()) {
    std::printf("reproduced: %zu train rows and %zu eval rows are bitwise equal (%s vs %s)\n",
                r->train_rows, r->eval_rows, options.run_dir.c_str(), r->out_dir.c_str());
    return 0;
  }
  std::printf("NOT reproduced: %s differs from %s:\n  %s\n", r->out_dir.c_str(),
              options.run_dir.c_str(), absl::StrJoin(r->differences, "\n  ").c_str());
  return 1;
}

int Compare(const std::vector<std::string>& args) {
  if (args.size() != 2 || absl::StartsWith(args[0], "-") || absl::StartsWith(args[1], "-")) {
    return Fail(2, "usage: launcher compare RUN_A RUN_B");
  }
  const std::string work_dir = convnextv2::config::UserWorkingDirectory();
  const std::string a = Absolute(args[0], work_dir), b = Absolute(args[1], work_dir);
  absl::StatusOr<convnextv2::launcher::ReproduceResult> r =
      convnextv2::launcher::CompareRuns(a, b);
  if (!r.ok()) return Fail(1, r.status().message());
  if (r->differences.empty()) {
    std::printf("equal: %zu train rows and %zu eval rows are bitwise equal (%s vs %s)\n",
                r->train_rows, r->eval_rows, a.c_str(), b.c_str());
    return 0;
  }
  std::printf("DIFFERENT: %s differs from %s:\n  %s\n", b.c_str(), a.c_str(),
              absl::StrJoin(r->differences, "\n  ").c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  std::vector<std::string> all(argv, argv + argc);
  if (command == "sweep") return Sweep(args, absl::StrJoin(all, " "));
  if (command == "status") {
    if (args.size() != 1) return Fail(2, "usage: launcher status SWEEP_DIR");
    absl::StatusOr<std::string> table = convnextv2::launcher::StatusTable(
        Absolute(args[0], convnextv2::config::UserWorkingDirectory()), /*show_progress=*/true);
    if (!table.ok()) return Fail(1, table.status().message());
    std::fputs(table->c_str(), stdout);
    return 0;
  }
  if (command == "report") return Report(args);
  if (command == "reproduce") return Reproduce(args);
  if (command == "compare") return Compare(args);
  return Fail(2, absl::StrCat("unknown command '", command,
                              "' (sweep, status, report, reproduce or compare; see launcher --help)"));
}
