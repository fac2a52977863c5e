#include "launcher/status.h"

#include <cmath>
#include <filesystem>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convnextv2/record/manifest.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/util/shell.h"
#include "convnextv2/util/status_macros.h"
#include "convnextv2/util/progress.h"
#include "launcher/submit.h"
#include "launcher/sweep.h"

namespace convnextv2::launcher {

std::map<int, std::string> QueueStates(const SweepManifest& manifest) {
  std::map<int, std::string> states;
  if (manifest.job_ids().empty()) return states;
  const std::vector<std::pair<int, int>> arrays =
      SplitArrays(manifest.tasks_size(), manifest.max_array_size());
  std::string out;
  const std::string command = absl::StrCat("squeue -h -r -o '%i %T' -j ",
                                           absl::StrJoin(manifest.job_ids(), ","), " 2>/dev/null");
  if (util::RunShell(command, &out) != 0) return states;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    // "<array job id>_<task id> <STATE>"
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() != 2) continue;
    std::vector<std::string> id = absl::StrSplit(fields[0], '_');
    int task;
    if (id.size() != 2 || !absl::SimpleAtoi(id[1], &task)) continue;
    for (int a = 0; a < manifest.job_ids_size() && a < static_cast<int>(arrays.size()); ++a) {
      if (manifest.job_ids(a) == id[0]) states[arrays[a].first + task] = fields[1];
    }
  }
  return states;
}

absl::StatusOr<std::string> StatusTable(const std::string& sweep_dir, bool show_progress) {
  absl::StatusOr<SweepManifest> manifest = ReadSweepManifest(sweep_dir);
  CONVNEXTV2_RETURN_IF_ERROR(manifest);
  const std::map<int, std::string> queue = QueueStates(*manifest);
  std::string table = absl::StrFormat(
      "sweep %s: %d tasks, job %s\n%-9s %-10s %-9s %8s %6s %10s %8s %8s  %s\n",
      manifest->sweep().name(), manifest->tasks_size(),
      manifest->job_ids().empty() ? "(not submitted)" : absl::StrJoin(manifest->job_ids(), ","),
      "task", "slurm", "run", "attempts", "epochs", "train_loss", "acc1", "best", "assignments");
  auto number = [](double v) { return std::isnan(v) ? std::string("-") : absl::StrFormat("%.4g", v); };
  std::optional<util::Progress> progress;
  if (show_progress) progress.emplace("status: reading runs", manifest->tasks_size());
  int64_t done = 0;
  for (const SweepTask& t : manifest->tasks()) {
    auto q = queue.find(t.index());
    std::string run_state = "-", attempts = "-", epochs = "-";
    double loss = record::kMissing, acc1 = record::kMissing, best = record::kMissing;
    if (absl::StatusOr<RunManifest> run = record::ReadManifest(t.run_dir() + "/manifest.pbtxt");
        run.ok()) {
      run_state = RunManifest::State_Name(run->state());
      attempts = absl::StrCat(run->attempts());
    }
    if (std::filesystem::exists(t.run_dir() + "/metrics.h5")) {
      absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(t.run_dir() + "/metrics.h5");
      if (log.ok()) {
        const size_t n = log->eval.rows();
        epochs = absl::StrCat(n);
        if (!log->train.empty()) loss = log->train.Value("loss", log->train.rows() - 1);
        if (n > 0) acc1 = log->eval.Value("acc1", n - 1);
        for (size_t i = 0; i < n; ++i) {
          const double a = log->eval.Value("acc1", i);
          if (std::isnan(best) || a > best) best = a;
        }
      } else {
        run_state = "unreadable metrics.h5";
      }
    }
    absl::StrAppendFormat(&table, "%-9s %-10s %-9s %8s %6s %10s %8s %8s  %s\n", t.name(),
                          q == queue.end() ? "-" : q->second, run_state, attempts, epochs,
                          number(loss), number(acc1), number(best),
                          absl::StrJoin(t.assignments(), " "));
    if (progress) progress->Update(++done);
  }
  if (progress) progress->Finish();
  return table;
}

}  // namespace convnextv2::launcher
