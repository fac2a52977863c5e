// The SVG of report.html (report_html.h): line charts of many series over shared axes with a
// star on the best series' best point, the heat map of a two-axis grid sweep's final acc@1, the
// colours both use, and HTML escaping for every text they write.
//
//   std::string svg = SvgChart({Series{"task_000", TaskColor(0), {0, 1}, {50, 60}}}, options);
#ifndef CONVNEXTV2_LAUNCHER_REPORT_SVG_H_
#define CONVNEXTV2_LAUNCHER_REPORT_SVG_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "launcher/report.h"
#include "launcher/sweep.pb.h"

namespace convnextv2::launcher {

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

// Text for HTML and SVG: & < > " and ' as entities.
std::string HtmlEscape(absl::string_view s);

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

#endif  // CONVNEXTV2_LAUNCHER_REPORT_SVG_H_
