#include "launcher/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "convnextv2/metrics/manifest.h"

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

std::vector<TaskSummary> SummarizeTasks(const SweepManifest& manifest) {
  std::vector<TaskSummary> out;
  for (const SweepTask& t : manifest.tasks()) {
    TaskSummary s;
    s.task = t;
    s.state = "-";
    if (auto run = metrics::ReadManifest(t.run_dir() + "/manifest.pbtxt"); run.ok()) {
      s.state = RunManifest::State_Name(run->state());
    }
    if (std::filesystem::exists(t.run_dir() + "/metrics.h5")) {
      if (auto log = metrics::ReadMetricsLog(t.run_dir() + "/metrics.h5"); log.ok()) {
        s.log = std::move(*log);
      } else {
        s.state = "unreadable metrics.h5";
      }
    }
    for (const metrics::EvalRow& e : s.log.eval) {
      Update(e.acc1, true, &s.best_acc1);
      Update(e.acc5, true, &s.best_acc5);
      Update(e.loss, false, &s.best_loss);
    }
    if (!s.log.eval.empty()) {
      s.final_acc1 = s.log.eval.back().acc1;
      s.final_acc5 = s.log.eval.back().acc5;
      s.final_loss = s.log.eval.back().loss;
    }
    out.push_back(std::move(s));
  }
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
    row.push_back(absl::StrCat(s.log.eval.size()));
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

std::string SvgLineChart(const std::vector<double>& x, const std::vector<double>& y,
                         const std::string& title) {
  constexpr double kW = 360, kH = 180, kPad = 30;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  bool any = false;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (std::isnan(y[i])) continue;
    if (!any) {
      x0 = x1 = x[i];
      y0 = y1 = y[i];
      any = true;
    }
    x0 = std::min(x0, x[i]), x1 = std::max(x1, x[i]);
    y0 = std::min(y0, y[i]), y1 = std::max(y1, y[i]);
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  std::string points;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (std::isnan(y[i])) continue;
    absl::StrAppendFormat(&points, "%.1f,%.1f ", kPad + (x[i] - x0) / (x1 - x0) * (kW - 2 * kPad),
                          kH - kPad - (y[i] - y0) / (y1 - y0) * (kH - 2 * kPad));
  }
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\">"
      "<text x=\"%.0f\" y=\"16\" font-size=\"12\">%s</text>"
      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>",
      kW, kH, kPad, HtmlEscape(title), kPad, kPad, kW - 2 * kPad, kH - 2 * kPad);
  if (any) {
    absl::StrAppendFormat(
        &svg,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"%s\"/>"
        "<text x=\"2\" y=\"%.0f\" font-size=\"10\">%.4g</text>"
        "<text x=\"2\" y=\"%.0f\" font-size=\"10\">%.4g</text>"
        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\">%.4g</text>"
        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"end\">%.4g</text>",
        points, kPad + 4, y1, kH - kPad, y0, kPad, kH - kPad + 14, x0, kW - kPad,
        kH - kPad + 14, x1);
  } else {
    absl::StrAppendFormat(&svg, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">no data</text>",
                          kW / 2 - 25, kH / 2);
  }
  return svg + "</svg>";
}

std::string ReportHtml(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks) {
  std::string html = absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sweep ",
      HtmlEscape(manifest.sweep().name()),
      "</title><style>body{font-family:sans-serif} table{border-collapse:collapse} "
      "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}</style></head><body>\n<h1>"
      "sweep ",
      HtmlEscape(manifest.sweep().name()), "</h1>\n<p>git ", HtmlEscape(manifest.git_commit()),
      manifest.git_dirty() ? " (dirty)" : "", ", jobs ",
      HtmlEscape(absl::StrJoin(manifest.job_ids(), ",")), "</p>\n<table>\n");
  const std::string csv = ReportTable(manifest, tasks, TableFormat::kCsv);
  bool first = true;
  for (absl::string_view line : absl::StrSplit(csv, '\n', absl::SkipEmpty())) {
    const char* cell = first ? "th" : "td";
    absl::StrAppend(&html, "<tr>");
    for (absl::string_view c : absl::StrSplit(line, ',')) {
      absl::StrAppend(&html, "<", cell, ">", HtmlEscape(c), "</", cell, ">");
    }
    absl::StrAppend(&html, "</tr>\n");
    first = false;
  }
  absl::StrAppend(&html, "</table>\n");
  for (const TaskSummary& s : tasks) {
    std::vector<double> steps, loss, epochs, acc1;
    for (const metrics::TrainRow& r : s.log.train) {
      steps.push_back(r.step);
      loss.push_back(r.loss);
    }
    for (const metrics::EvalRow& e : s.log.eval) {
      epochs.push_back(e.epoch);
      acc1.push_back(e.acc1);
    }
    absl::StrAppend(&html, "<h2>", HtmlEscape(s.task.name()), " ",
                    HtmlEscape(absl::StrJoin(s.task.assignments(), " ")), "</h2>\n",
                    SvgLineChart(steps, loss, "train loss by step"), "\n",
                    SvgLineChart(epochs, acc1, "eval acc1 (%) by epoch"), "\n");
  }
  return html + "</body></html>\n";
}

}  // namespace convnextv2::launcher
