#include "launcher/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "convnextv2/record/manifest.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/util/progress.h"

namespace convnextv2::launcher {
namespace {

std::string Number(double v) { return std::isnan(v) ? "" : absl::StrFormat("%.4f", v); }

// The swept value of `field` in a task's assignments ("optim.blr=2e-3").
std::string AssignedValue(const SweepTask& task, const std::string& field) {
  for (const std::string& a : task.assignments()) {
    const size_t eq = a.find('=');
    if (eq != std::string::npos && a.substr(0, eq) == field) return a.substr(eq + 1);
  }
  return "";
}

// Column names: the swept fields (as recorded), then the metrics.
std::vector<std::string> SweptFields(const SweepManifest& manifest) {
  std::vector<std::string> fields;
  if (manifest.tasks_size() == 0) return fields;
  for (const std::string& a : manifest.tasks(0).assignments()) {
    fields.push_back(a.substr(0, a.find('=')));
  }
  return fields;
}

std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

void Update(double v, bool larger_is_better, double* best) {
  if (std::isnan(v)) return;
  if (std::isnan(*best) || (larger_is_better ? v > *best : v < *best)) *best = v;
}

}  // namespace

std::vector<TaskSummary> SummarizeTasks(const SweepManifest& manifest, bool show_progress) {
  std::vector<TaskSummary> out;
  std::optional<util::Progress> progress;
  if (show_progress) progress.emplace("report: reading runs", manifest.tasks_size());
  for (const SweepTask& t : manifest.tasks()) {
    TaskSummary s;
    s.task = t;
    s.state = "-";
    if (auto run = record::ReadManifest(t.run_dir() + "/manifest.pbtxt"); run.ok()) {
      s.state = RunManifest::State_Name(run->state());
    }
    if (std::filesystem::exists(t.run_dir() + "/metrics.h5")) {
      if (auto log = record::ReadMetricsLog(t.run_dir() + "/metrics.h5"); log.ok()) {
        s.log = std::move(*log);
      } else {
        s.state = "unreadable metrics.h5";
      }
    }
    const record::Table& eval = s.log.eval;
    for (size_t i = 0; i < eval.rows(); ++i) {
      Update(eval.Value("acc1", i), true, &s.best_acc1);
      Update(eval.Value("acc5", i), true, &s.best_acc5);
      Update(eval.Value("loss", i), false, &s.best_loss);
    }
    if (!eval.empty()) {
      s.final_acc1 = eval.Value("acc1", eval.rows() - 1);
      s.final_acc5 = eval.Value("acc5", eval.rows() - 1);
      s.final_loss = eval.Value("loss", eval.rows() - 1);
    }
    out.push_back(std::move(s));
    if (progress) progress->Update(static_cast<int64_t>(out.size()));
  }
  if (progress) progress->Finish();
  return out;
}

absl::Status SortTasks(const std::string& metric, std::vector<TaskSummary>* tasks) {
  double TaskSummary::*best;
  bool descending = true;
  if (metric == "acc1") {
    best = &TaskSummary::best_acc1;
  } else if (metric == "acc5") {
    best = &TaskSummary::best_acc5;
  } else if (metric == "loss") {
    best = &TaskSummary::best_loss;
    descending = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--sort=", metric, ": sort by acc1, acc5 or loss"));
  }
  std::stable_sort(tasks->begin(), tasks->end(), [&](const TaskSummary& a, const TaskSummary& b) {
    const double x = a.*best, y = b.*best;
    if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
    return descending ? x > y : x < y;
  });
  return absl::OkStatus();
}

std::string ReportTable(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks,
                        TableFormat format) {
  std::vector<std::string> header = {"task"};
  const std::vector<std::string> fields = SweptFields(manifest);
  header.insert(header.end(), fields.begin(), fields.end());
  for (const char* c : {"state", "epochs", "final_acc1", "best_acc1", "final_acc5", "best_acc5",
                        "final_loss", "best_loss"}) {
    header.push_back(c);
  }
  std::vector<std::vector<std::string>> rows;
  for (const TaskSummary& s : tasks) {
    std::vector<std::string> row = {s.task.name()};
    for (const std::string& f : fields) row.push_back(AssignedValue(s.task, f));
    row.push_back(s.state);
    row.push_back(absl::StrCat(s.log.eval.rows()));
    for (double v : {s.final_acc1, s.best_acc1, s.final_acc5, s.best_acc5, s.final_loss,
                     s.best_loss}) {
      row.push_back(Number(v));
    }
    rows.push_back(std::move(row));
  }
  std::string out;
  if (format == TableFormat::kCsv) {
    absl::StrAppend(&out, absl::StrJoin(header, ","), "\n");
    for (const auto& r : rows) absl::StrAppend(&out, absl::StrJoin(r, ","), "\n");
    return out;
  }
  if (format == TableFormat::kMarkdown) {
    absl::StrAppend(&out, "| ", absl::StrJoin(header, " | "), " |\n|");
    for (size_t i = 0; i < header.size(); ++i) absl::StrAppend(&out, i < 2 + fields.size() ? "---|" : "---:|");
    absl::StrAppend(&out, "\n");
    for (const auto& r : rows) absl::StrAppend(&out, "| ", absl::StrJoin(r, " | "), " |\n");
    return out;
  }
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
    for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      absl::StrAppend(&l, i ? "  " : "", cells[i], std::string(width[i] - cells[i].size(), ' '));
    }
    absl::StrAppend(&out, l.substr(0, l.find_last_not_of(' ') + 1), "\n");
  };
  line(header);
  for (const auto& r : rows) line(r);
  return out;
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

// At most `n` points of a long curve (every k-th, the last kept).
void Thin(size_t n, std::vector<double>* x, std::vector<double>* y) {
  if (x->size() <= n) return;
  const size_t k = (x->size() + n - 1) / n;
  std::vector<double> tx, ty;
  for (size_t i = 0; i < x->size(); i += k) tx.push_back((*x)[i]), ty.push_back((*y)[i]);
  if (tx.back() != x->back()) tx.push_back(x->back()), ty.push_back(y->back());
  *x = std::move(tx);
  *y = std::move(ty);
}

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

std::string SvgChart(const std::vector<Series>& series, const ChartOptions& o) {
  constexpr double kW = kChartWidth, kH = kChartHeight;
  constexpr double kLeft = 64, kRight = 18, kTop = 30, kBottom = 46;
  constexpr double kPlotW = kW - kLeft - kRight, kPlotH = kH - kTop - kBottom;
  double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  bool any = false;
  for (const Series& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i]) || !std::isfinite(s.x[i])) continue;
      if (!any) x0 = x1 = s.x[i], y0 = y1 = s.y[i], any = true;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  }
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"%.0f\" height=\"%.0f\" "
      "font-family=\"sans-serif\"><text x=\"%.0f\" y=\"18\" font-size=\"14\" "
      "font-weight=\"bold\">%s</text>"
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\" stroke=\"#666\" "
      "shape-rendering=\"crispEdges\"/>",
      kW, kH, kLeft, HtmlEscape(o.title), kLeft, kTop, kPlotW, kPlotH, kPlotBackground);
  if (!any) {
    absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no data</text>",
                          kLeft + kPlotW / 2 - 25, kTop + kPlotH / 2);
    return svg + "</svg>";
  }
  const std::vector<double> xt = NiceTicks(x0, x1, 6, o.integer_x);
  // A little room above and below, so that extreme values do not sit on the frame.
  const double margin = 0.03 * (y1 > y0 ? y1 - y0 : std::max(std::fabs(y1), 1.0));
  const std::vector<double> yt =
      NiceTicks(y0 >= 0 ? std::max(0.0, y0 - margin) : y0 - margin, y1 + margin, 5, false);
  x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  auto px = [&](double v) { return kLeft + (v - x0) / (x1 - x0) * kPlotW; };
  auto py = [&](double v) { return kTop + kPlotH - (v - y0) / (y1 - y0) * kPlotH; };
  // Axes: grid lines, tick values, titles with units.
  for (double v : xt) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\" "
        "shape-rendering=\"crispEdges\"/><text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" "
        "text-anchor=\"middle\">%s</text>",
        px(v), kTop, px(v), kTop + kPlotH + 4, kGridColor, px(v), kTop + kPlotH + 16, Tick(v));
  }
  for (double v : yt) {
    absl::StrAppendFormat(
        &svg,
        "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"%s\" "
        "shape-rendering=\"crispEdges\"/><text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" "
        "text-anchor=\"end\">%s</text>",
        kLeft - 4, py(v), kLeft + kPlotW, py(v), kGridColor, kLeft - 6, py(v) + 4, Tick(v));
  }
  absl::StrAppendFormat(
      &svg,
      "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">%s</text>"
      "<text x=\"14\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 14 %.0f)\">%s</text>",
      kLeft + kPlotW / 2, kH - 8, HtmlEscape(o.x_label), kTop + kPlotH / 2, kTop + kPlotH / 2,
      HtmlEscape(o.y_label));
  // The best series last, so that it lies on top.
  std::vector<const Series*> order;
  for (const Series& s : series) order.push_back(&s);
  std::stable_partition(order.begin(), order.end(), [](const Series* s) { return !s->best; });
  for (const Series* s : order) {
    std::string points;
    double best_x = NAN, best_y = NAN;
    for (size_t i = 0; i < s->x.size() && i < s->y.size(); ++i) {
      if (!std::isfinite(s->y[i]) || !std::isfinite(s->x[i])) continue;
      absl::StrAppendFormat(&points, "%.1f,%.1f ", px(s->x[i]), py(s->y[i]));
      if (std::isnan(best_y) || (o.higher_is_better ? s->y[i] > best_y : s->y[i] < best_y)) {
        best_x = s->x[i], best_y = s->y[i];
      }
      if (o.points) {
        absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>",
                              px(s->x[i]), py(s->y[i]), s->best ? 5.0 : 4.0, s->color);
      }
    }
    absl::StrAppendFormat(&svg,
                          "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                          "stroke-opacity=\"%s\" points=\"%s\"><title>%s</title></polyline>",
                          s->color, s->best ? 3.5 : 2.0, o.points ? "0.6" : "1", points,
                          HtmlEscape(s->label));
    if (s->best && !std::isnan(best_y)) {
      absl::StrAppend(&svg, Star(px(best_x), py(best_y), 9));
      absl::StrAppendFormat(
          &svg, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">best: %s "
                "(%s)</text>",
          kLeft + kPlotW - 4, kTop + 14, HtmlEscape(s->label), Tick(best_y));
    }
  }
  return svg + "</svg>";
}

std::string SvgHeatMap(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks) {
  const SweepConfig& sweep = manifest.sweep();
  if (sweep.axis_size() != 2 || sweep.combine() != SweepConfig::GRID) return "";
  // Rows: the first axis's values, columns: the second's, in sweep order; repeats averaged.
  std::vector<std::string> rows, cols;
  std::string row_field, col_field;
  std::map<std::pair<std::string, std::string>, std::pair<double, int>> sums;
  for (const SweepTask& t : manifest.tasks()) {
    if (t.assignments_size() < 2) return "";
    const std::string& a = t.assignments(0);
    const std::string& b = t.assignments(1);
    row_field = a.substr(0, a.find('='));
    col_field = b.substr(0, b.find('='));
    const std::string r = a.substr(a.find('=') + 1), c = b.substr(b.find('=') + 1);
    if (std::find(rows.begin(), rows.end(), r) == rows.end()) rows.push_back(r);
    if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
    sums[{r, c}];
  }
  for (const TaskSummary& s : tasks) {
    if (s.task.assignments_size() < 2 || std::isnan(s.final_acc1)) continue;
    const std::string& a = s.task.assignments(0);
    const std::string& b = s.task.assignments(1);
    auto& [sum, n] = sums[{a.substr(a.find('=') + 1), b.substr(b.find('=') + 1)}];
    sum += s.final_acc1;
    ++n;
  }
  double lo = NAN, hi = NAN;
  std::pair<std::string, std::string> best_cell;
  for (const auto& [cell, v] : sums) {
    if (v.second == 0) continue;
    const double mean = v.first / v.second;
    if (std::isnan(lo) || mean < lo) lo = mean;
    if (std::isnan(hi) || mean > hi) hi = mean, best_cell = cell;
  }
  constexpr double kCellW = kHeatCellWidth, kCellH = kHeatCellHeight, kLeft = 150, kTop = 56;
  const std::string title =
      absl::StrCat("final acc@1 (%) over ", row_field, " \xC3\x97 ", col_field,
                   sweep.repeats() > 1 ? " (mean of repeats)" : "");
  // Wide enough for the title (about 8 pixels a character at 14 px bold).
  const double w = std::max(kLeft + cols.size() * kCellW + 20, 8.0 * title.size() + 8);
  const double h = kTop + rows.size() * kCellH + 64;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"%.0f\" "
      "height=\"%.0f\" font-family=\"sans-serif\"><text x=\"4\" y=\"18\" font-size=\"14\" "
      "font-weight=\"bold\">%s</text>"
      "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">%s</text>"
      "<text x=\"4\" y=\"%.0f\" font-size=\"12\">%s</text>",
      w, h, HtmlEscape(title), kLeft + cols.size() * kCellW / 2,
      kTop - 24, HtmlEscape(col_field), kTop - 6, HtmlEscape(row_field));
  for (size_t j = 0; j < cols.size(); ++j) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" "
                          "text-anchor=\"middle\">%s</text>",
                          kLeft + (j + 0.5) * kCellW, kTop - 6, HtmlEscape(cols[j]));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" "
                          "text-anchor=\"end\">%s</text>",
                          kLeft - 8, kTop + (i + 0.5) * kCellH + 4, HtmlEscape(rows[i]));
    for (size_t j = 0; j < cols.size(); ++j) {
      const auto& [sum, n] = sums[{rows[i], cols[j]}];
      const double x = kLeft + j * kCellW, y = kTop + i * kCellH;
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
      const double t = hi > lo ? (mean - lo) / (hi - lo) : 1.0;
      absl::StrAppendFormat(&svg,
                            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                            "fill=\"%s\" stroke=\"#fff\" shape-rendering=\"crispEdges\"/>"
                            "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" "
                            "fill=\"%s\">%.2f</text>",
                            x, y, kCellW, kCellH, HeatColor(t), x + kCellW / 2,
                            y + kCellH / 2 + 4, t < 0.6 ? "#fff" : "#000", mean);
      if (std::make_pair(rows[i], cols[j]) == best_cell) {
        absl::StrAppend(&svg, Star(x + 12, y + 12, 8));
      }
    }
  }
  // The colour scale.
  const double sy = kTop + rows.size() * kCellH + 16;
  for (int k = 0; k < 20; ++k) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"12\" fill=\"%s\" "
                          "shape-rendering=\"crispEdges\"/>",
                          kLeft + k * 8.0, sy, 8.0, HeatColor((k + 0.5) / 20));
  }
  absl::StrAppendFormat(&svg,
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%.2f</text>"
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" "
                        "text-anchor=\"end\">%.2f %%</text>",
                        kLeft, sy + 26, lo, kLeft + 160, sy + 26, hi);
  return svg + "</svg>";
}

std::string ReportHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks) {
  // The best task: highest best acc1, else lowest best eval loss.
  const TaskSummary* best = nullptr;
  for (const TaskSummary& s : tasks) {
    if (std::isnan(s.best_acc1)) continue;
    if (best == nullptr || s.best_acc1 > best->best_acc1) best = &s;
  }
  for (const TaskSummary& s : tasks) {
    if (best != nullptr || std::isnan(s.best_loss)) continue;
    best = &s;
  }
  auto color = [](const TaskSummary& s) { return TaskColor(std::max(s.task.index(), 0)); };
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sweep ",
      HtmlEscape(manifest.sweep().name()),
      "</title><style>body{font-family:sans-serif;margin:12px;background:#fff} "
      "table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 6px;"
      "text-align:right} tr.best td{font-weight:bold} .sw{display:inline-block;width:12px;"
      "height:12px;margin-right:4px;vertical-align:middle} .charts{display:flex;"
      "flex-wrap:wrap;gap:16px} .legend{columns:3;margin:8px 0} .legend div{margin:1px 0}"
      "</style></head><body>\n<h1>sweep ",
      HtmlEscape(manifest.sweep().name()), "</h1>\n<p>git ", HtmlEscape(manifest.git_commit()),
      manifest.git_dirty() ? " (dirty)" : "", ", jobs ",
      HtmlEscape(absl::StrJoin(manifest.job_ids(), ",")), "</p>\n");
  if (best != nullptr) {
    absl::StrAppend(&html, "<p>best task: <span class=\"sw\" style=\"background:", color(*best),
                    "\"></span><b>", HtmlEscape(best->task.name()), "</b> ",
                    HtmlEscape(absl::StrJoin(best->task.assignments(), " ")), " (best acc@1 ",
                    Number(best->best_acc1), " %)</p>\n");
  }
  absl::StrAppend(&html, "<table>\n");
  const std::string csv = ReportTable(manifest, tasks, TableFormat::kCsv);
  int row = -1;
  for (absl::string_view line : absl::StrSplit(csv, '\n', absl::SkipEmpty())) {
    const char* cell = row < 0 ? "th" : "td";
    const TaskSummary* s = row >= 0 ? &tasks[row] : nullptr;
    absl::StrAppend(&html, s == best && s != nullptr ? "<tr class=\"best\">" : "<tr>");
    bool first = true;
    for (absl::string_view c : absl::StrSplit(line, ',')) {
      absl::StrAppend(&html, "<", cell, ">");
      if (first && s != nullptr) {
        absl::StrAppend(&html, "<span class=\"sw\" style=\"background:", color(*s),
                        "\"></span>", s == best ? "\xE2\x98\x85 " : "");
      }
      absl::StrAppend(&html, HtmlEscape(c), "</", cell, ">");
      first = false;
    }
    absl::StrAppend(&html, "</tr>\n");
    ++row;
  }
  absl::StrAppend(&html, "</table>\n<div class=\"legend\">");
  for (const TaskSummary& s : tasks) {
    absl::StrAppend(&html, "<div><span class=\"sw\" style=\"background:", color(s),
                    "\"></span>", &s == best ? "\xE2\x98\x85 " : "", HtmlEscape(s.task.name()),
                    " ", HtmlEscape(absl::StrJoin(s.task.assignments(), " ")), "</div>");
  }
  absl::StrAppend(&html, "</div>\n");
  const std::string heat = SvgHeatMap(manifest, tasks);
  if (!heat.empty()) absl::StrAppend(&html, "<div>", heat, "</div>\n");
  // One chart per declared chart (record::ChartedColumns), every task overlaid. /train is
  // plotted against `step`, the global micro-batch index, /eval against the epoch.
  absl::StrAppend(&html, "<div class=\"charts\">\n");
  for (const record::ChartedColumn& m : record::ChartedColumns()) {
    const bool eval = m.group == record::Group::kEval;
    std::vector<Series> series;
    bool any = false;
    for (const TaskSummary& s : tasks) {
      Series c;
      c.label = s.task.name();
      c.color = color(s);
      c.best = &s == best && m.chart.best != record::Chart::kNoBest;
      const record::Table& t = s.log.group(m.group);
      for (size_t i = 0; i < t.rows(); ++i) {
        c.x.push_back(eval ? t.Epoch(i) : t.Step(i));
        c.y.push_back(t.Value(m.name, i));
        any |= !std::isnan(c.y.back());
      }
      if (!eval) Thin(600, &c.x, &c.y);
      series.push_back(std::move(c));
    }
    if (!any) continue;
    ChartOptions o;
    o.title = m.chart.title;
    o.x_label = eval ? "epoch" : "step (micro-batches)";
    o.y_label = m.chart.y_label;
    o.points = eval;
    o.integer_x = true;
    // The best task's star marks its best point; a chart without a best (lr) has none.
    o.higher_is_better = m.chart.best != record::Chart::kLower;
    absl::StrAppend(&html, SvgChart(series, o), "\n");
  }
  return html + "</div>\n</body></html>\n";
}

}  // namespace convnextv2::launcher
