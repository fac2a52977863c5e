// `launcher report SWEEP_DIR`: the swept values against final and best acc1/acc5/loss of each
// task, sorted by a chosen metric, as text, CSV and Markdown, and report.html, the page a sweep
// is judged by: the table, a legend with one colour per task, one chart per metric (train loss
// and learning rate by step, eval acc@1, acc@5 and loss as points per epoch) with every task
// overlaid on shared axes and the best task drawn thicker with a star at its best point, and for
// a grid over two axes a heat map of the final acc@1 (inline SVG, no scripts).
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

std::string ReportTable(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks,
                        TableFormat format);

std::string ReportHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks);

// What the page draws with (exposed for tests that look at the rendered picture).
inline constexpr int kChartWidth = 520, kChartHeight = 320;
inline constexpr int kHeatCellWidth = 96, kHeatCellHeight = 44;
inline constexpr char kPlotBackground[] = "#f4f4f8";  // inside every chart's frame, nowhere else
inline constexpr char kGridColor[] = "#dcdce4";
inline constexpr char kBestMarkColor[] = "#ffd700";   // the best task's star

// The colour of task `index`: the ten of matplotlib's tab10 first, then hues the golden angle
// apart. "#rrggbb".
std::string TaskColor(size_t index);
// The heat map's scale at t in [0, 1] (viridis: dark purple low, yellow high). "#rrggbb".
std::string HeatColor(double t);

// One curve of a chart.
struct Series {
  std::string label;
  std::string color;
  std::vector<double> x, y;  // NaN values are skipped
  bool best = false;         // drawn thicker and last, a star at its best point
};

struct ChartOptions {
  std::string title, x_label, y_label;  // axis labels carry the units: "epoch", "acc@1 (%)"
  bool points = false;            // a marker per point (eval curves, per epoch)
  bool higher_is_better = true;   // which point of the best series gets the star
  bool integer_x = false;         // x ticks at least 1 apart (steps, epochs)
};

// Every series over shared axes (tick values, grid, titles) as an inline <svg>.
std::string SvgChart(const std::vector<Series>& series, const ChartOptions& options);

// The heat map of each grid point's final acc@1 (mean of its repeats) for a GRID sweep over
// exactly two axes: rows the first axis's values, columns the second's, a star on the best
// cell, a colour scale below. "" for other sweeps.
std::string SvgHeatMap(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks);

}  // namespace convnextv2::launcher

#endif  // CONVNEXTV2_LAUNCHER_REPORT_H_
