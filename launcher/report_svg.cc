#include "launcher/report_svg.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace convnextv2::launcher {
namespace {

// Tick values 1, 2 or 5 times a power of ten apart covering [lo, hi], about `target` of them;
// with `integer`, at least 1 apart (epochs, steps).
std::vector<double> NiceTicks(double lo, double hi, int target, bool integer) {
  double span = hi - lo;
  if (!(span > 0)) span = std::max(std::fabs(hi), 1.0);
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = std::max(step, 1.0);
  std::vector<double> ticks;
  for (double v = std::floor(lo / step) * step; ticks.size() < 50; v += step) {
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
    if (v >= hi - step * 1e-9) break;
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string Tick(double v) { return absl::StrFormat("%.4g", v); }

std::string Star(double cx, double cy, double r) {
  std::string points;
  for (int i = 0; i < 10; ++i) {
    const double a = M_PI / 5 * i - M_PI / 2, rr = i % 2 ? r * 0.45 : r;
    absl::StrAppendFormat(&points, "%.1f,%.1f ", cx + rr * std::cos(a), cy + rr * std::sin(a));
  }
  return absl::StrFormat(
      "<polygon points=\"%s\" fill=\"%s\" stroke=\"#000\" stroke-width=\"0.8\"/>", points,
      kBestMarkColor);
}

}  // namespace

std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(
      s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

std::string TaskColor(size_t i) {
  static const char* const kTab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  if (i < 10) return kTab10[i];
  // Further tasks: hues 137.5 degrees apart (the golden angle), alternating lightness.
  const double h = std::fmod(i * 137.508, 360.0) / 60.0, s = 0.65;
  const double l = i % 2 ? 0.42 : 0.55;
  const double c = (1 - std::fabs(2 * l - 1)) * s, x = c * (1 - std::fabs(std::fmod(h, 2) - 1));
  double r = 0, g = 0, b = 0;
  if (h < 1) r = c, g = x;
  else if (h < 2) r = x, g = c;
  else if (h < 3) g = c, b = x;
  else if (h < 4) g = x, b = c;
  else if (h < 5) r = x, b = c;
  else r = c, b = x;
  const double m = l - c / 2;
  return absl::StrFormat("#%02x%02x%02x", static_cast<int>(std::lround((r + m) * 255)),
                         static_cast<int>(std::lround((g + m) * 255)),
                         static_cast<int>(std::lround((b + m) * 255)));
}

std::string HeatColor(double t) {
  // Five stops of viridis: dark purple (low) to yellow (high).
  static const int kStops[][3] = {
      {68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(std::isnan(t) ? 0.0 : t, 0.0, 1.0) * 4;
  const int k = std::min(static_cast<int>(t), 3);
  const double f = t - k;
  int rgb[3];
  for (int c = 0; c < 3; ++c) {
    rgb[c] = static_cast<int>(std::lround(kStops[k][c] + f * (kStops[k + 1][c] - kStops[k][c])));
  }
  return absl::StrFormat("#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
}

namespace {

// A chart's plot area and the mapping of its axes' values to pixels.
struct Plot {
  static constexpr double kW = kChartWidth, kH = kChartHeight;
  static constexpr double kLeft = 64, kRight = 18, kTop = 30, kBottom = 46;
  static constexpr double kPlotW = kW - kLeft - kRight, kPlotH = kH - kTop - kBottom;
  double x0 = 0, x1 = 0, y0 = 0, y1 = 0;

  double px(double v) const { return kLeft + (v - x0) / (x1 - x0) * kPlotW; }
  double py(double v) const { return kTop + kPlotH - (v - y0) / (y1 - y0) * kPlotH; }
};

// The range of the finite points of all series; false when there are none.
bool DataBounds(const std::vector<Series>& series, Plot* b) {
  bool any = false;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) continue;
      if (!any) b->x0 = b->x1 = s.x[i], b->y0 = b->y1 = s.y[i], any = true;
      b->x0 = std::min(b->x0, s.x[i]), b->x1 = std::max(b->x1, s.x[i]);
      b->y0 = std::min(b->y0, s.y[i]), b->y1 = std::max(b->y1, s.y[i]);
    }
  }
  return any;
}

// Grid lines, tick values and the axis titles with their units.
std::string Axes(const Plot& p, const std::vector<double>& xt, const std::vector<double>& yt,
                 const ChartOptions& o) {
  std::string svg;
  for (double v : xt) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\" "
        "shape-rendering=\"crispEdges\"/><text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" "
        "text-anchor=\"middle\">%s</text>",
        p.px(v), p.kTop, p.px(v), p.kTop + p.kPlotH + 4, kGridColor, p.px(v),
        p.kTop + p.kPlotH + 16, Tick(v));
  }
  for (double v : yt) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" "
        "shape-rendering=\"crispEdges\"/><text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" "
        "text-anchor=\"end\">%s</text>",
        p.kLeft - 4, p.py(v), p.kLeft + p.kPlotW, p.py(v), kGridColor, p.kLeft - 6, p.py(v) + 4,
        Tick(v));
  }
  absl::StrAppendFormat(
      &svg,
      "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">%s</text>"
      "<text x=\"14\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 14 %.0f)\">%s</text>",
      p.kLeft + p.kPlotW / 2, p.kH - 8, HtmlEscape(o.x_label), p.kTop + p.kPlotH / 2,
      p.kTop + p.kPlotH / 2, HtmlEscape(o.y_label));
  return svg;
}

// One series: its markers, its line and, for the best series, a star at its best point.
std::string SeriesSvg(const Plot& p, const Series& s, const ChartOptions& o) {
  std::string svg, points;
  double best_x = NAN, best_y = NAN;
  for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
    if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) continue;
    absl::StrAppendFormat(&points, "%.1f,%.1f ", p.px(s.x[i]), p.py(s.y[i]));
    if (std::isnan(best_y) || (o.higher_is_better ? s.y[i] > best_y : s.y[i] < best_y)) {
      best_x = s.x[i], best_y = s.y[i];
    }
    if (o.points) {
      absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>",
                            p.px(s.x[i]), p.py(s.y[i]), s.best ? 5.0 : 4.0, s.color);
    }
  }
  absl::StrAppendFormat(&svg,
                        "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                        "stroke-opacity=\"%s\" points=\"%s\"><title>%s</title></polyline>",
                        s.color, s.best ? 3.5 : 2.0, o.points ? "0.6" : "1", points,
                        HtmlEscape(s.label));
  if (s.best && !std::isnan(best_y)) {
    absl::StrAppend(&svg, Star(p.px(best_x), p.py(best_y), 9));
    absl::StrAppendFormat(
        &svg, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">best: %s "
              "(%s)</text>",
        p.kLeft + p.kPlotW - 4, p.kTop + 14, HtmlEscape(s.label), Tick(best_y));
  }
  return svg;
}

}  // namespace

std::string SvgChart(const std::vector<Series>& series, const ChartOptions& o) {
  Plot p;
  const bool any = DataBounds(series, &p);
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\"><text x=\"%.0f\" y=\"18\" font-size=\"14\" "
      "font-weight=\"bold\">%s</text>"
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\" stroke=\"#666\" "
      "shape-rendering=\"crispEdges\"/>",
      p.kW, p.kH, p.kLeft, HtmlEscape(o.title), p.kLeft, p.kTop, p.kPlotW, p.kPlotH,
      kPlotBackground);
  if (!any) {
    absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no data</text>",
                          p.kLeft + p.kPlotW / 2 - 25, p.kTop + p.kPlotH / 2);
    return svg + "</svg>";
  }
  const std::vector<double> xt = NiceTicks(p.x0, p.x1, 6, o.integer_x);
  // A little room above and below, so that extreme values do not sit on the frame.
  const double margin = 0.03 * (p.y1 > p.y0 ? p.y1 - p.y0 : std::max(std::fabs(p.y1), 1.0));
  const std::vector<double> yt = NiceTicks(
      p.y0 >= 0 ? std::max(0.0, p.y0 - margin) : p.y0 - margin, p.y1 + margin, 5, false);
  p.x0 = xt.front(), p.x1 = xt.back(), p.y0 = yt.front(), p.y1 = yt.back();
  absl::StrAppend(&svg, Axes(p, xt, yt, o));
  // The best series last, so that it lies on top.
  std::vector<const Series*> order;
  for (const Series& s : series) order.push_back(&s);
  std::stable_partition(order.begin(), order.end(), [](const Series* s) { return !s->best; });
  for (const Series* s : order) absl::StrAppend(&svg, SeriesSvg(p, *s, o));
  return svg + "</svg>";
}

namespace {

// Each grid point's sum and count of final acc@1 over its repeats, rows the first axis's values
// and columns the second's in sweep order.
struct HeatGrid {
  std::vector<std::string> rows, cols;
  std::string row_field, col_field;
  std::map<std::pair<std::string, std::string>, std::pair<double, int>> sums;
  double lo = NAN, hi = NAN;  // of the cells' means
  std::pair<std::string, std::string> best_cell;
};

constexpr double kHeatLeft = 150, kHeatTop = 56;

std::string Value(const std::string& assignment) {
  return assignment.substr(assignment.find('=') + 1);
}

std::optional<HeatGrid> CollectHeatGrid(const SweepManifest& manifest,
                                        const std::vector<TaskSummary>& tasks) {
  const SweepConfig& sweep = manifest.sweep();
  if (sweep.axis_size() != 2 || sweep.combine() != SweepConfig::GRID) return std::nullopt;
  HeatGrid g;
  for (const SweepTask& t : manifest.tasks()) {
    if (t.assignments_size() < 2) return std::nullopt;
    const std::string& a = t.assignments(0);
    const std::string& b = t.assignments(1);
    g.row_field = a.substr(0, a.find('='));
    g.col_field = b.substr(0, b.find('='));
    const std::string r = Value(a), c = Value(b);
    if (std::find(g.rows.begin(), g.rows.end(), r) == g.rows.end()) g.rows.push_back(r);
    if (std::find(g.cols.begin(), g.cols.end(), c) == g.cols.end()) g.cols.push_back(c);
    g.sums[{r, c}];
  }
  for (const TaskSummary& s : tasks) {
    if (s.task.assignments_size() < 2 || std::isnan(s.final_acc1)) continue;
    auto& [sum, n] = g.sums[{Value(s.task.assignments(0)), Value(s.task.assignments(1))}];
    sum += s.final_acc1;
    ++n;
  }
  for (const auto& [cell, v] : g.sums) {
    if (v.second == 0) continue;
    const double mean = v.first / v.second;
    if (std::isnan(g.lo) || mean < g.lo) g.lo = mean;
    if (std::isnan(g.hi) || mean > g.hi) g.hi = mean, g.best_cell = cell;
  }
  return g;
}

// The row labels and the cells, each with its mean; a star on the best.
std::string HeatCells(HeatGrid& g) {
  constexpr double kCellW = kHeatCellWidth, kCellH = kHeatCellHeight;
  std::string svg;
  for (size_t i = 0; i < g.rows.size(); ++i) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" "
                          "text-anchor=\"end\">%s</text>",
                          kHeatLeft - 8, kHeatTop + (i + 0.5) * kCellH + 4, HtmlEscape(g.rows[i]));
    for (size_t j = 0; j < g.cols.size(); ++j) {
      const auto& [sum, n] = g.sums[{g.rows[i], g.cols[j]}];
      const double x = kHeatLeft + j * kCellW, y = kHeatTop + i * kCellH;
      if (n == 0) {
        absl::StrAppendFormat(&svg,
                              "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                              "fill=\"#dddddd\" stroke=\"#fff\" shape-rendering=\"crispEdges\"/>"
                              "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" "
                              "text-anchor=\"middle\">no data</text>",
                              x, y, kCellW, kCellH, x + kCellW / 2, y + kCellH / 2 + 4);
        continue;
      }
      const double mean = sum / n;
      const double t = g.hi > g.lo ? (mean - g.lo) / (g.hi - g.lo) : 1.0;
      absl::StrAppendFormat(&svg,
                            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                            "fill=\"%s\" stroke=\"#fff\" shape-rendering=\"crispEdges\"/>"
                            "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" "
                            "fill=\"%s\">%.2f</text>",
                            x, y, kCellW, kCellH, HeatColor(t), x + kCellW / 2,
                            y + kCellH / 2 + 4, t < 0.6 ? "#fff" : "#000", mean);
      if (std::make_pair(g.rows[i], g.cols[j]) == g.best_cell) {
        absl::StrAppend(&svg, Star(x + 12, y + 12, 8));
      }
    }
  }
  return svg;
}

// The colour scale below the cells, from the lowest mean to the highest.
std::string HeatScale(const HeatGrid& g) {
  const double sy = kHeatTop + g.rows.size() * kHeatCellHeight + 16;
  std::string svg;
  for (int k = 0; k < 20; ++k) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"12\" fill=\"%s\" "
                          "shape-rendering=\"crispEdges\"/>",
                          kHeatLeft + k * 8.0, sy, 8.0, HeatColor((k + 0.5) / 20));
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%.2f</text>"
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" "
                        "text-anchor=\"end\">%.2f %%</text>",
                        kHeatLeft, sy + 26, g.lo, kHeatLeft + 160, sy + 26, g.hi);
  return svg;
}

}  // namespace

std::string SvgHeatMap(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks) {
  std::optional<HeatGrid> g = CollectHeatGrid(manifest, tasks);
  if (!g) return "";
  const std::string title =
      absl::StrCat("final acc@1 (%) over ", g->row_field, " \xC3\x97 ", g->col_field,
                   manifest.sweep().repeats() > 1 ? " (mean of repeats)" : "");
  // Wide enough for the title (about 8 pixels a character at 14 px bold).
  const double w =
      std::max(kHeatLeft + g->cols.size() * kHeatCellWidth + 20, 8.0 * title.size() + 8);
  const double h = kHeatTop + g->rows.size() * kHeatCellHeight + 64;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"%.0f\" "
      "height=\"%.0f\" font-family=\"sans-serif\"><text x=\"4\" y=\"18\" font-size=\"14\" "
      "font-weight=\"bold\">%s</text>"
      "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">%s</text>"
      "<text x=\"4\" y=\"%.0f\" font-size=\"12\">%s</text>",
      w, h, HtmlEscape(title), kHeatLeft + g->cols.size() * kHeatCellWidth / 2.0, kHeatTop - 24,
      HtmlEscape(g->col_field), kHeatTop - 6, HtmlEscape(g->row_field));
  for (size_t j = 0; j < g->cols.size(); ++j) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" "
                          "text-anchor=\"middle\">%s</text>",
                          kHeatLeft + (j + 0.5) * kHeatCellWidth, kHeatTop - 6,
                          HtmlEscape(g->cols[j]));
  }
  return absl::StrCat(svg, HeatCells(*g), HeatScale(*g), "</svg>");
}

}  // namespace convnextv2::launcher
