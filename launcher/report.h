// `launcher report SWEEP_DIR`: the swept values against final and best acc1/acc5/loss of each
// task, sorted by a chosen metric, as text, CSV and Markdown, and an HTML page with every task's
// loss and accuracy curves (inline SVG).
//
//   absl::StatusOr<std::vector<TaskSummary>> tasks = SummarizeTasks(manifest);
//   SortTasks("acc1", &*tasks);
//   std::string csv = ReportTable(manifest, *tasks, TableFormat::kCsv);
//   std::string html = ReportHtml(manifest, *tasks);
#ifndef CONVNEXTV2_LAUNCHER_REPORT_H_
#define CONVNEXTV2_LAUNCHER_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "convnextv2/metrics/metrics_log.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

struct TaskSummary {
  SweepTask task;
  std::string state;  // the run manifest's state, or "-" when the run has not started
  metrics::MetricsLog log;
  // Final (last evaluation) and best values; NaN without evaluations.
  double final_acc1 = metrics::kMissing, best_acc1 = metrics::kMissing;
  double final_acc5 = metrics::kMissing, best_acc5 = metrics::kMissing;
  double final_loss = metrics::kMissing, best_loss = metrics::kMissing;  // eval loss; best = min
};

enum class TableFormat { kText, kCsv, kMarkdown };

// Reads each task's manifest and metrics.h5 (missing files leave the task empty).
std::vector<TaskSummary> SummarizeTasks(const SweepManifest& manifest);

// Sorts by the best value of `metric` (acc1 and acc5 descending, loss ascending), tasks without
// values last; InvalidArgument for another metric.
absl::Status SortTasks(const std::string& metric, std::vector<TaskSummary>* tasks);

std::string ReportTable(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks,
                        TableFormat format);

std::string ReportHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks);

// A line chart of y over x as an inline <svg> element with its title and value range.
std::string SvgLineChart(const std::vector<double>& x, const std::vector<double>& y,
                         const std::string& title);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_REPORT_H_
