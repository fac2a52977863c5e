// `launcher report SWEEP_DIR`, the data: each task's final and best acc1/acc5/loss read from its
// run dir, sorting by a chosen metric, and the table of swept values against them as text, CSV
// (RFC 4180 quoting: a swept value may hold commas, quotes or newlines) and Markdown. The page
// that draws it, report.html, is report_html.h.
//
//   std::vector<TaskSummary> tasks = SummarizeTasks(manifest);
//   SortTasks("acc1", &tasks);
//   std::string csv = ReportTable(manifest, tasks, TableFormat::kCsv);
#ifndef CONVNEXTV2_LAUNCHER_REPORT_H_
#define CONVNEXTV2_LAUNCHER_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "convnextv2/record/metrics_log.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

struct TaskSummary {
  SweepTask task;
  std::string state;  // the run manifest's state, or "-" when the run has not started
  record::MetricsLog log;
  // Final (last evaluation) and best values; NaN without evaluations.
  double final_acc1 = record::kMissing, best_acc1 = record::kMissing;
  double final_acc5 = record::kMissing, best_acc5 = record::kMissing;
  double final_loss = record::kMissing, best_loss = record::kMissing;  // eval loss; best = min
};

enum class TableFormat { kText, kCsv, kMarkdown };

// Reads each task's manifest and metrics.h5 (missing files leave the task empty); with
// `show_progress`, reports progress on stderr (see progress.h).
std::vector<TaskSummary> SummarizeTasks(const SweepManifest& manifest,
                                        bool show_progress = false);

// Sorts by the best value of `metric` (acc1 and acc5 descending, loss ascending), tasks without
// values last; InvalidArgument for another metric.
absl::Status SortTasks(const std::string& metric, std::vector<TaskSummary>* tasks);

// The table in `format`. CSV lines end with LF.
std::string ReportTable(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks,
                        TableFormat format);

// The table's cells: "task", the swept fields (as recorded), then state, epochs and the metrics;
// one row per task in the order given. What ReportTable formats and report.html shows.
struct ReportRows {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t num_text_columns = 0;  // the leading columns that are not numbers (left-aligned)
};
ReportRows TableRows(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks);

// One CSV field per RFC 4180: quoted when it holds a comma, a quote, CR or LF, quotes doubled.
std::string CsvField(absl::string_view field);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_REPORT_H_
