#include "launcher/report_html.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "convnextv2/record/task_records.h"
#include "launcher/report_svg.h"

namespace convnextv2::launcher {
namespace {

std::string Number(double v) { return std::isnan(v) ? "" : absl::StrFormat("%.4f", v); }

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

std::string ColorOf(const TaskSummary& s) { return TaskColor(std::max(s.task.index(), 0)); }

std::string Swatch(const TaskSummary& s) {
  return absl::StrCat("<span class=\"sw\" style=\"background:", ColorOf(s), "\"></span>");
}

// The best task: highest best acc1, else the first with an eval loss; null when none has run.
const TaskSummary* BestTask(const std::vector<TaskSummary>& tasks) {
  const TaskSummary* best = nullptr;
  for (const TaskSummary& s : tasks) {
    if (std::isnan(s.best_acc1)) continue;
    if (best == nullptr || s.best_acc1 > best->best_acc1) best = &s;
  }
  for (const TaskSummary& s : tasks) {
    if (best != nullptr || std::isnan(s.best_loss)) continue;
    best = &s;
  }
  return best;
}

std::string PageHead(const SweepManifest& manifest, const TaskSummary* best) {
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
    absl::StrAppend(&html, "<p>best task: ", Swatch(*best), "<b>", HtmlEscape(best->task.name()),
                    "</b> ", HtmlEscape(absl::StrJoin(best->task.assignments(), " ")),
                    " (best acc@1 ", Number(best->best_acc1), " %)</p>\n");
  }
  return html;
}

// The table's cells (report.h's TableRows), each task's first cell with its colour.
std::string TableHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks,
                      const TaskSummary* best) {
  const ReportRows table = TableRows(manifest, tasks);
  std::string html = "<table>\n<tr>";
  for (const std::string& c : table.header) absl::StrAppend(&html, "<th>", HtmlEscape(c), "</th>");
  absl::StrAppend(&html, "</tr>\n");
  for (size_t row = 0; row < table.rows.size(); ++row) {
    const TaskSummary& s = tasks[row];
    absl::StrAppend(&html, &s == best ? "<tr class=\"best\">" : "<tr>");
    for (size_t i = 0; i < table.rows[row].size(); ++i) {
      absl::StrAppend(&html, "<td>");
      if (i == 0) absl::StrAppend(&html, Swatch(s), &s == best ? "\xE2\x98\x85 " : "");
      absl::StrAppend(&html, HtmlEscape(table.rows[row][i]), "</td>");
    }
    absl::StrAppend(&html, "</tr>\n");
  }
  return html + "</table>\n";
}

std::string Legend(const std::vector<TaskSummary>& tasks, const TaskSummary* best) {
  std::string html = "<div class=\"legend\">";
  for (const TaskSummary& s : tasks) {
    absl::StrAppend(&html, "<div>", Swatch(s), &s == best ? "\xE2\x98\x85 " : "",
                    HtmlEscape(s.task.name()), " ",
                    HtmlEscape(absl::StrJoin(s.task.assignments(), " ")), "</div>");
  }
  return html + "</div>\n";
}

// One series per task of the declared column `c`; `*any` says whether any has a value. /train
// is plotted against `step`, the global micro-batch index, /eval against the epoch.
std::vector<Series> ColumnSeries(const record::ChartedColumn& c,
                                 const std::vector<TaskSummary>& tasks, const TaskSummary* best,
                                 bool* any) {
  const bool eval = c.group == record::Group::kEval;
  std::vector<Series> series;
  for (const TaskSummary& s : tasks) {
    Series curve;
    curve.label = s.task.name();
    curve.color = ColorOf(s);
    curve.best = &s == best && c.chart.best != record::Chart::kNoBest;
    const record::Table& t = s.log.group(c.group);
    for (size_t i = 0; i < t.rows(); ++i) {
      curve.x.push_back(eval ? t.Epoch(i) : t.Step(i));
      curve.y.push_back(t.Value(c.name, i));
      *any |= !std::isnan(curve.y.back());
    }
    if (!eval) Thin(600, &curve.x, &curve.y);
    series.push_back(std::move(curve));
  }
  return series;
}

// One chart per declared chart (record::ChartedColumns) that has values, every task overlaid.
std::string Charts(const std::vector<TaskSummary>& tasks, const TaskSummary* best) {
  std::string html = "<div class=\"charts\">\n";
  for (const record::ChartedColumn& c : record::ChartedColumns()) {
    bool any = false;
    const std::vector<Series> series = ColumnSeries(c, tasks, best, &any);
    if (!any) continue;
    ChartOptions o;
    o.title = c.chart.title;
    o.x_label = c.group == record::Group::kEval ? "epoch" : "step (micro-batches)";
    o.y_label = c.chart.y_label;
    o.points = c.group == record::Group::kEval;
    o.integer_x = true;
    // The best task's star marks its best point; a chart without a best (lr) has none.
    o.higher_is_better = c.chart.best != record::Chart::kLower;
    absl::StrAppend(&html, SvgChart(series, o), "\n");
  }
  return html + "</div>\n";
}

}  // namespace

std::string ReportHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks) {
  const TaskSummary* best = BestTask(tasks);
  std::string html = absl::StrCat(PageHead(manifest, best), TableHtml(manifest, tasks, best),
                                  Legend(tasks, best));
  const std::string heat = SvgHeatMap(manifest, tasks);
  if (!heat.empty()) absl::StrAppend(&html, "<div>", heat, "</div>\n");
  return absl::StrCat(html, Charts(tasks, best), "</body></html>\n");
}

}  // namespace convnextv2::launcher
