// launcher: Slurm job arrays from protobuf sweeps, their status, reports and reproduction.
//
//   launcher sweep [--dry_run] [--force] [--binary=PATH] [--sweep_dir=DIR] SWEEP.pbtxt
//   launcher status SWEEP_DIR
//   launcher report [--sort=acc1|acc5|loss] [--format=text|csv|markdown] SWEEP_DIR
//   launcher reproduce [--out_dir=DIR] [--binary=PATH] RUN_DIR
//   launcher compare RUN_A RUN_B
//   launcher log_without_timing LOG_TXT
//   launcher help [COMMAND]        (or --help; `launcher COMMAND --help` for one command)
//
// The subcommands are rows of kCommands; flags are gflags, each subcommand accepting the ones
// its row names (--flag=value, --flag value, and --noflag for booleans). Links protobuf, the
// config library and the HDF5 reader, not libtorch: it runs on login nodes.
#include <gflags/gflags.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "convnextv2/config/command_line.h"
#include "convnextv2/util/files.h"
#include "launcher/report.h"
#include "launcher/report_html.h"
#include "launcher/reproduce.h"
#include "launcher/status.h"
#include "launcher/submit.h"

DEFINE_bool(dry_run, false, "write everything and print the script; submit nothing");
DEFINE_bool(force, false,
            "rewrite an existing sweep dir and submit again (runs resume in place)");
DEFINE_string(binary, "",
              "the finetune/pretrain binary (default: the one built beside launcher)");
DEFINE_string(sweep_dir, "",
              "the sweep dir (default: <sweep_root>/<name> under the current dir)");
DEFINE_string(sort, "acc1", "sort by the best acc1, acc5 or loss");
DEFINE_string(format, "text", "print the table as text, csv or markdown");
DEFINE_string(out_dir, "", "where to rerun (default: RUN_DIR.reproduced)");

namespace {

namespace fs = std::filesystem;
namespace l = convnextv2::launcher;

// What a subcommand runs on: its positional arguments (flags are in FLAGS_*).
struct Invocation {
  std::vector<std::string> args;
  std::string work_dir;      // relative paths resolve against it
  std::string command_line;  // the whole command, for the sweep manifest
};

struct Flag {
  const char* name;
  const char* value;  // "PATH" for --binary=PATH; nullptr for a boolean
};

struct Command {
  const char* name;
  const char* args;  // after the name: "[flags] SWEEP.pbtxt"
  size_t num_args;   // positional arguments, exactly
  const char* summary;
  const char* details;  // more lines for `launcher help COMMAND`, indented by 6
  std::vector<Flag> flags;
  int (*run)(const Invocation&);
};

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "launcher: %s\n", std::string(message).c_str());
  return code;
}

std::string Absolute(const std::string& path, const std::string& work_dir) {
  if (path.empty()) return path;
  fs::path p(path);
  if (p.is_relative()) p = fs::path(work_dir) / p;
  return p.lexically_normal().string();
}

int Sweep(const Invocation& in) {
  l::SweepOptions options;
  options.work_dir = in.work_dir;
  options.command_line = in.command_line;
  options.dry_run = FLAGS_dry_run;
  options.force = FLAGS_force;
  options.binary = Absolute(FLAGS_binary, in.work_dir);
  options.sweep_dir = Absolute(FLAGS_sweep_dir, in.work_dir);
  options.sweep_file = Absolute(in.args[0], in.work_dir);
  absl::StatusOr<l::SweepResult> result = l::RunSweep(options);
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

int Status(const Invocation& in) {
  absl::StatusOr<std::string> table =
      l::StatusTable(Absolute(in.args[0], in.work_dir), /*show_progress=*/true);
  if (!table.ok()) return Fail(1, table.status().message());
  std::fputs(table->c_str(), stdout);
  return 0;
}

int Report(const Invocation& in) {
  const std::string format = FLAGS_format, dir = Absolute(in.args[0], in.work_dir);
  if (format != "text" && format != "csv" && format != "markdown") {
    return Fail(2, absl::StrCat("--format=", format, ": text, csv or markdown"));
  }
  absl::StatusOr<l::SweepManifest> manifest = l::ReadSweepManifest(dir);
  if (!manifest.ok()) return Fail(1, manifest.status().message());
  std::vector<l::TaskSummary> tasks = l::SummarizeTasks(*manifest, /*show_progress=*/true);
  if (absl::Status s = l::SortTasks(FLAGS_sort, &tasks); !s.ok()) return Fail(2, s.message());
  const std::string text = l::ReportTable(*manifest, tasks, l::TableFormat::kText);
  const std::string csv = l::ReportTable(*manifest, tasks, l::TableFormat::kCsv);
  const std::string md = l::ReportTable(*manifest, tasks, l::TableFormat::kMarkdown);
  for (const auto& [name, contents] : std::vector<std::pair<std::string, std::string>>{
           {"report.txt", text},
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

int Reproduce(const Invocation& in) {
  l::ReproduceOptions options;
  options.out_dir = Absolute(FLAGS_out_dir, in.work_dir);
  options.binary = Absolute(FLAGS_binary, in.work_dir);
  options.run_dir = Absolute(in.args[0], in.work_dir);
  options.show_progress = true;
  absl::StatusOr<l::ReproduceResult> r = l::Reproduce(options);
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

int Compare(const Invocation& in) {
  const std::string a = Absolute(in.args[0], in.work_dir), b = Absolute(in.args[1], in.work_dir);
  absl::StatusOr<l::ReproduceResult> r = l::CompareRuns(a, b);
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

int LogWithoutTiming(const Invocation& in) {
  absl::StatusOr<std::string> text = l::LogWithoutTiming(Absolute(in.args[0], in.work_dir));
  if (!text.ok()) return Fail(1, text.status().message());
  std::fputs(text->c_str(), stdout);
  return 0;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"sweep", "[flags] SWEEP.pbtxt", 1,
       "expand a SweepConfig, validate every task, write the sweep dir, submit one job array",
       "Expands the SweepConfig (launcher/sweep.proto) into one ExperimentConfig per task (grid\n"
       "or zip of the axes, times repeats with their seeds), validates every task with the\n"
       "binaries' own validator, writes the sweep dir and submits one job array:\n"
       "  <sweep_dir>/tasks/task_NNN.pbtxt   resolved config of each task\n"
       "  <sweep_dir>/runs/task_NNN/         each task's output_dir (manifest.pbtxt, metrics.h5)\n"
       "  <sweep_dir>/logs/%A_%a.out         Slurm output of each task\n"
       "  <sweep_dir>/bin/<binary>           copy of the binary the tasks run\n"
       "  <sweep_dir>/sweep.sbatch           the array script\n"
       "  <sweep_dir>/sweep_manifest.pbtxt   the sweep, its tasks, git commit, job ids\n",
       {{"dry_run", nullptr}, {"force", nullptr}, {"binary", "PATH"}, {"sweep_dir", "DIR"}},
       Sweep},
      {"status", "SWEEP_DIR", 1,
       "per task: Slurm state (squeue), attempts, epochs done and the last metrics", "", {},
       Status},
      {"report", "[flags] SWEEP_DIR", 1,
       "swept values against final and best acc1, acc5 and eval loss; report.{txt,csv,md,html}",
       "Sorted by the best --sort metric, printed in --format. Also writes\n"
       "SWEEP_DIR/report.{txt,csv,md,html}; the HTML page draws each task's curves.\n",
       {{"sort", "acc1|acc5|loss"}, {"format", "text|csv|markdown"}}, Report},
      {"reproduce", "[flags] RUN_DIR", 1,
       "rerun a run's recorded config here and compare the two metrics.h5 row by row",
       "Runs the config recorded in RUN_DIR/manifest.pbtxt again (here, not on Slurm) and\n"
       "compares the two metrics.h5 row by row, timing columns excepted. On the CPU they must\n"
       "be bitwise equal; exits 1 and lists the first differences when they are not.\n",
       {{"out_dir", "DIR"}, {"binary", "PATH"}}, Reproduce},
      {"compare", "RUN_A RUN_B", 2,
       "compare two run dirs' metrics.h5 as reproduce does; exit 1 when they differ",
       "E.g. a run that was preempted and requeued against one that was not.\n", {}, Compare},
      {"log_without_timing", "LOG_TXT", 1,
       "print a run's log.txt without its timing keys, for diffing two runs' logs",
       "The timing keys are those the tasks' declared records mark timing (e.g.\n"
       "train_images_per_second); the same rule compare and reproduce use.\n",
       {}, LogWithoutTiming},
  };
  return kCommands;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::string CommandNames() {
  std::vector<std::string> names;
  for (const Command& c : Commands()) names.push_back(c.name);
  return absl::StrJoin(names, ", ");
}

// "--binary=PATH   the finetune/pretrain binary ...", the text from the flag's definition.
std::string FlagHelp(const Flag& f) {
  gflags::CommandLineFlagInfo info;
  gflags::GetCommandLineFlagInfo(f.name, &info);
  const std::string spelled =
      f.value == nullptr ? absl::StrCat("--", f.name) : absl::StrCat("--", f.name, "=", f.value);
  return absl::StrFormat("      %-24s %s\n", spelled, info.description);
}

// One command's help: its synopsis, summary, details and flags.
std::string CommandHelp(const Command& c) {
  std::string out = absl::StrCat("  launcher ", c.name, " ", c.args, "\n      ", c.summary, "\n");
  for (absl::string_view line : absl::StrSplit(c.details, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "      ", line, "\n");
  }
  if (!c.flags.empty()) absl::StrAppend(&out, "    flags:\n");
  for (const Flag& f : c.flags) absl::StrAppend(&out, FlagHelp(f));
  return out;
}

std::string Usage() {
  std::string out =
      "launcher: Slurm job arrays from protobuf sweeps (see docs/slurm.md).\n\n"
      "usage: launcher COMMAND [flags] ARGS...    launcher help [COMMAND]\n\ncommands:\n";
  for (const Command& c : Commands()) {
    absl::StrAppendFormat(&out, "  %-19s %s\n", c.name, c.summary);
  }
  absl::StrAppend(&out, "\n");
  for (const Command& c : Commands()) absl::StrAppend(&out, CommandHelp(c), "\n");
  absl::StrAppend(
      &out,
      "Flags take --flag=value or --flag value (booleans: --flag, --noflag) before or after the\n"
      "arguments. Relative paths resolve against the directory you ran the command from\n"
      "(BUILD_WORKING_DIRECTORY under `bazel run //launcher -- ...`). Slurm's client commands\n"
      "must be on PATH (and SLURM_CONF set if your cluster needs it).\n");
  return out;
}

// The flag an argument names ("--binary=x" -> "binary"), "" for a positional argument; "--"
// ends the flags.
std::string FlagName(const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-') return "";
  absl::string_view name = absl::StripPrefix(absl::StripPrefix(arg, "-"), "-");
  return std::string(name.substr(0, name.find('=')));
}

// Refuses a flag that `c` does not take (gflags knows them all); true for --help.
int CheckFlags(const Command& c, const std::vector<std::string>& args, bool* help) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") break;
    const std::string name = FlagName(args[i]);
    if (name.empty()) continue;
    if (name == "help" || name == "h") {
      *help = true;
      return 0;
    }
    const Flag* known = nullptr;
    for (const Flag& f : c.flags) {
      if (name == f.name || (f.value == nullptr && name == absl::StrCat("no", f.name))) known = &f;
    }
    if (known == nullptr) {
      std::vector<std::string> names;
      for (const Flag& f : c.flags) names.push_back(absl::StrCat("--", f.name));
      const std::string takes = names.empty()
                                    ? "it takes no flags"
                                    : absl::StrCat("its flags: ", absl::StrJoin(names, ", "));
      return Fail(2, absl::StrCat("unknown flag '", args[i], "' for ", c.name, " (", takes,
                                  "; see launcher help ", c.name, ")"));
    }
    if (known->value != nullptr && args[i].find('=') == std::string::npos) ++i;  // its value
  }
  return 0;
}

// Runs `c` on the arguments after its name: flags through gflags, then the positional ones.
int RunCommand(const Command& c, std::vector<std::string> args, const std::string& command_line) {
  bool help = false;
  if (int rc = CheckFlags(c, args, &help); rc != 0) return rc;
  if (help) {
    std::fputs(CommandHelp(c).c_str(), stdout);
    return 0;
  }
  std::vector<char*> argv = {const_cast<char*>(c.name)};
  for (std::string& a : args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  char** p = argv.data();
  gflags::ParseCommandLineNonHelpFlags(&argc, &p, /*remove_flags=*/true);
  Invocation in;
  in.args.assign(p + 1, p + argc);
  in.work_dir = convnextv2::config::UserWorkingDirectory();
  in.command_line = command_line;
  if (in.args.size() != c.num_args) {
    return Fail(2, absl::StrCat("usage: launcher ", c.name, " ", c.args, " (see launcher help ",
                                c.name, ")"));
  }
  return c.run(in);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string command_line = absl::StrJoin(argv, argv + argc, " ");
  if (args.empty()) {
    std::fputs(Usage().c_str(), stderr);
    return 2;
  }
  if (args[0] == "help" || FlagName(args[0]) == "help" || FlagName(args[0]) == "h") {
    if (args.size() > 1 && args[0] == "help") {
      const Command* c = FindCommand(args[1]);
      if (c == nullptr) {
        return Fail(2,
                    absl::StrCat("help: unknown command '", args[1], "' (", CommandNames(), ")"));
      }
      std::fputs(CommandHelp(*c).c_str(), stdout);
      return 0;
    }
    std::fputs(Usage().c_str(), stdout);
    return 0;
  }
  const Command* c = FindCommand(args[0]);
  if (c == nullptr) {
    return Fail(2, absl::StrCat("unknown command '", args[0], "' (", CommandNames(),
                                "; see launcher --help)"));
  }
  args.erase(args.begin());
  return RunCommand(*c, std::move(args), command_line);
}
