#include "launcher/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "convnextv2/record/manifest.h"
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

ReportRows TableRows(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks) {
  ReportRows t;
  t.header = {"task"};
  const std::vector<std::string> fields = SweptFields(manifest);
  t.header.insert(t.header.end(), fields.begin(), fields.end());
  for (const char* c : {"state", "epochs", "final_acc1", "best_acc1", "final_acc5", "best_acc5",
                        "final_loss", "best_loss"}) {
    t.header.push_back(c);
  }
  t.num_text_columns = 2 + fields.size();  // task, the swept fields, state
  for (const TaskSummary& s : tasks) {
    std::vector<std::string> row = {s.task.name()};
    for (const std::string& f : fields) row.push_back(AssignedValue(s.task, f));
    row.push_back(s.state);
    row.push_back(absl::StrCat(s.log.eval.rows()));
    for (double v : {s.final_acc1, s.best_acc1, s.final_acc5, s.best_acc5, s.final_loss,
                     s.best_loss}) {
      row.push_back(Number(v));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string CsvField(absl::string_view field) {
  if (field.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(field);
  return absl::StrCat("\"", absl::StrReplaceAll(field, {{"\"", "\"\""}}), "\"");
}

namespace {

// The cells of one line, each through `escape`, joined by `separator`.
std::string JoinCells(const std::vector<std::string>& cells, absl::string_view separator,
                      std::string (*escape)(absl::string_view)) {
  std::vector<std::string> escaped;
  for (const std::string& c : cells) escaped.push_back(escape(c));
  return absl::StrJoin(escaped, separator);
}

std::string CsvTable(const ReportRows& t) {
  std::string out = absl::StrCat(JoinCells(t.header, ",", CsvField), "\n");
  for (const auto& r : t.rows) absl::StrAppend(&out, JoinCells(r, ",", CsvField), "\n");
  return out;
}

// A cell may not hold the column separator or a line break.
std::string MarkdownCell(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"|", "\\|"}, {"\r\n", "<br>"}, {"\n", "<br>"}});
}

std::string MarkdownTable(const ReportRows& t) {
  std::string out = absl::StrCat("| ", JoinCells(t.header, " | ", MarkdownCell), " |\n|");
  for (size_t i = 0; i < t.header.size(); ++i) {
    absl::StrAppend(&out, i < t.num_text_columns ? "---|" : "---:|");
  }
  absl::StrAppend(&out, "\n");
  for (const auto& r : t.rows) {
    absl::StrAppend(&out, "| ", JoinCells(r, " | ", MarkdownCell), " |\n");
  }
  return out;
}

std::string TextTable(const ReportRows& t) {
  std::vector<size_t> width(t.header.size());
  for (size_t i = 0; i < t.header.size(); ++i) {
    width[i] = t.header[i].size();
    for (const auto& r : t.rows) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      absl::StrAppend(&l, i ? "  " : "", cells[i], std::string(width[i] - cells[i].size(), ' '));
    }
    absl::StrAppend(&out, l.substr(0, l.find_last_not_of(' ') + 1), "\n");
  };
  line(t.header);
  for (const auto& r : t.rows) line(r);
  return out;
}

}  // namespace

std::string ReportTable(const SweepManifest& manifest, const std::vector<TaskSummary>& tasks,
                        TableFormat format) {
  const ReportRows t = TableRows(manifest, tasks);
  switch (format) {
    case TableFormat::kCsv:
      return CsvTable(t);
    case TableFormat::kMarkdown:
      return MarkdownTable(t);
    case TableFormat::kText:
      break;
  }
  return TextTable(t);
}

}  // namespace convnextv2::launcher
