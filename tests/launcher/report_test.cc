#include "launcher/report.h"
#include "launcher/report_html.h"
#include "launcher/report_svg.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/record/tables.h"

namespace convnextv2::launcher {
namespace {

using ::testing::HasSubstr;

using ::convnextv2::testing::MakeTable;

TaskSummary Task(int index, const std::string& blr, std::vector<double> acc1) {
  TaskSummary s;
  s.task.set_index(index);
  s.task.set_name(absl::StrCat("task_00", index));
  s.task.add_assignments("optim.blr=" + blr);
  s.state = "FINISHED";
  s.log.eval = MakeTable({"acc1", "acc5", "loss"});
  s.log.train = MakeTable({"loss"});
  for (size_t e = 0; e < acc1.size(); ++e) {
    s.log.eval.AppendNamed({{"epoch", e}, {"acc1", acc1[e]}, {"acc5", 90},
                            {"loss", 2.0 - acc1[e] / 100}});
    s.log.train.AppendNamed({{"step", e}, {"loss", 1.0 / (e + 1)}});
  }
  if (!acc1.empty()) {
    s.final_acc1 = acc1.back();
    s.best_acc1 = *std::max_element(acc1.begin(), acc1.end());
    s.final_loss = s.log.eval.Value("loss", s.log.eval.rows() - 1);
    s.best_loss = 2.0 - s.best_acc1 / 100;
  }
  return s;
}

SweepManifest Manifest() {
  SweepManifest m;
  m.mutable_sweep()->set_name("s<1>");
  m.add_tasks()->add_assignments("optim.blr=1e-3");
  m.add_job_ids("42");
  return m;
}

TEST(ReportTest, SortsByBestMetricWithEmptyTasksLast) {
  std::vector<TaskSummary> tasks = {Task(0, "1e-3", {50, 60}), Task(1, "2e-3", {}),
                                    Task(2, "4e-3", {70, 65})};
  ASSERT_TRUE(SortTasks("acc1", &tasks).ok());
  EXPECT_EQ(tasks[0].task.name(), "task_002");  // best 70 beats 60, although final 65
  EXPECT_EQ(tasks[1].task.name(), "task_000");
  EXPECT_EQ(tasks[2].task.name(), "task_001");
  ASSERT_TRUE(SortTasks("loss", &tasks).ok());  // lowest loss first
  EXPECT_EQ(tasks[0].task.name(), "task_002");
  EXPECT_FALSE(SortTasks("f1", &tasks).ok());
}

TEST(ReportTest, TablesInThreeFormats) {
  std::vector<TaskSummary> tasks = {Task(2, "4e-3", {70, 65}), Task(1, "2e-3", {})};
  const std::string csv = ReportTable(Manifest(), tasks, TableFormat::kCsv);
  EXPECT_EQ(csv,
            "task,optim.blr,state,epochs,final_acc1,best_acc1,final_acc5,best_acc5,final_loss,"
            "best_loss\n"
            "task_002,4e-3,FINISHED,2,65.0000,70.0000,,,1.3500,1.3000\n"
            "task_001,2e-3,FINISHED,0,,,,,,\n");
  const std::string md = ReportTable(Manifest(), tasks, TableFormat::kMarkdown);
  EXPECT_THAT(md, HasSubstr("| task | optim.blr | state | epochs |"));
  EXPECT_THAT(md, HasSubstr("|---|---|---|---:|"));
  EXPECT_THAT(md, HasSubstr("| task_002 | 4e-3 | FINISHED | 2 | 65.0000 | 70.0000 |"));
  const std::string text = ReportTable(Manifest(), tasks, TableFormat::kText);
  EXPECT_THAT(text, HasSubstr("task      optim.blr  state     epochs  final_acc1"));
}

TEST(ReportTest, HtmlDrawsCurvesAndEscapes) {
  std::vector<TaskSummary> tasks = {Task(0, "1e-3", {50, 60, 70})};
  const std::string html = ReportHtml(Manifest(), tasks);
  EXPECT_THAT(html, HasSubstr("<title>sweep s&lt;1&gt;</title>"));
  EXPECT_THAT(html, HasSubstr("task_000</td><td>1e-3</td>"));
  EXPECT_THAT(html, HasSubstr(">train loss</text>"));
  EXPECT_THAT(html, HasSubstr(">eval acc@1</text>"));
  EXPECT_THAT(html, HasSubstr("best task: "));
  // /train charts plot `step`, the global micro-batch index, and say so.
  EXPECT_THAT(html, HasSubstr(">step (micro-batches)</text>"));
  EXPECT_THAT(html, ::testing::Not(HasSubstr("optimizer steps")));
  // acc1 50, 60, 70 at epochs 0..2 on axes 0..2 and 45..75 (ticks 5 apart around the values
  // and a margin): x from the plot area's left (64) to its right (502), y one sixth above its
  // bottom (274) to one sixth below its top (30).
  ChartOptions o;
  o.integer_x = true;
  const std::string svg = SvgChart({Series{"t", "#123456", {0, 1, 2}, {50, 60, 70}}}, o);
  EXPECT_THAT(svg, HasSubstr("points=\"64.0,233.3 283.0,152.0 502.0,70.7 \""));
  EXPECT_THAT(svg, HasSubstr(">55</text>"));  // a y tick value
  EXPECT_THAT(SvgChart({}, o), HasSubstr("no data"));
  // Not a two-axis grid: no heat map.
  EXPECT_EQ(SvgHeatMap(Manifest(), tasks), "");
}

TEST(ReportTest, SweptValueWithACommaAndAQuoteIsOneCsvFieldAndOneHtmlCell) {
  // A string field swept over values that hold the CSV separator, a quote and HTML markup.
  const std::string value = "a,b \"c\" <d>";
  std::vector<TaskSummary> tasks = {Task(0, value, {50}), Task(1, "e\nf", {})};
  const std::string csv = ReportTable(Manifest(), tasks, TableFormat::kCsv);
  EXPECT_EQ(csv,
            "task,optim.blr,state,epochs,final_acc1,best_acc1,final_acc5,best_acc5,final_loss,"
            "best_loss\n"
            "task_000,\"a,b \"\"c\"\" <d>\",FINISHED,1,50.0000,50.0000,,,1.5000,1.5000\n"
            "task_001,\"e\nf\",FINISHED,0,,,,,,\n");
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("\""), "\"\"\"\"");
  const std::string md = ReportTable(Manifest(), {Task(0, "a|b", {})}, TableFormat::kMarkdown);
  EXPECT_THAT(md, HasSubstr("| task_000 | a\\|b | FINISHED |"));

  const std::string html = ReportHtml(Manifest(), tasks);
  EXPECT_THAT(html, HasSubstr("task_000</td><td>a,b &quot;c&quot; &lt;d&gt;</td><td>FINISHED"));
  // The task's row has as many cells as the header: the comma did not split the value.
  const size_t row = html.find("<tr class=\"best\">");
  ASSERT_NE(row, std::string::npos);
  const std::string cells = html.substr(row, html.find("</tr>", row) - row);
  size_t n = 0;
  for (size_t at = cells.find("<td>"); at != std::string::npos; at = cells.find("<td>", at + 1)) {
    ++n;
  }
  EXPECT_EQ(n, 10u);
  EXPECT_EQ(HtmlEscape("'&"), "&#39;&amp;");
}

TEST(ReportTest, ColoursAreDistinct) {
  std::set<std::string> colours;
  for (size_t i = 0; i < 300; ++i) colours.insert(TaskColor(i));
  EXPECT_EQ(colours.size(), 300u);
  EXPECT_EQ(TaskColor(0), "#1f77b4");
  EXPECT_EQ(HeatColor(0), "#440154");
  EXPECT_EQ(HeatColor(1), "#fde725");
}

}  // namespace
}  // namespace convnextv2::launcher
