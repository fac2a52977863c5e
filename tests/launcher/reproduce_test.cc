#include "launcher/reproduce.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/util/progress.h"

namespace convnextv2::launcher {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using record::Group;

// A table with fine-tuning's declared columns.
record::Table Columns(Group group) {
  record::Table t;
  const record::FinetuneRecord task = record::MakeFinetuneRecord({});
  for (const record::ColumnSpec& c : task.declaration.columns(group)) {
    t.AddColumn(c.name, c.type);
  }
  return t;
}

record::MetricsLog Log() {
  record::MetricsLog log;
  log.train = Columns(Group::kTrain);
  log.eval = Columns(Group::kEval);
  for (int s = 0; s < 3; ++s) {  // grad_norm stays NaN
    log.train.AppendNamed({{"step", s}, {"loss", 1.0 / (s + 1)}, {"lr", 1e-3}, {"wall_time", s}});
  }
  log.eval.AppendNamed({{"step", 2}, {"acc1", 50}});
  return log;
}

TEST(CompareLogsTest, EqualLogsIgnoringTimingAndNan) {
  record::MetricsLog a = Log(), b = Log();
  b.train.Set("wall_time", 1, 99);
  b.train.Set("images_per_second", 2, 5);
  b.eval.Set("wall_time", 0, 7);
  EXPECT_TRUE(CompareLogs(a, b).empty());
}

TEST(CompareLogsTest, ReportsTheFirstDifferencesBitwise) {
  record::MetricsLog a = Log(), b = Log();
  b.train.Set("loss", 1, std::nextafter(a.train.Value("loss", 1), 1.0));  // one ulp
  b.eval.Set("acc1", 0, 51);
  EXPECT_THAT(CompareLogs(a, b),
              ElementsAre(HasSubstr("train row 1 (step 1): loss 0.5 != 0.50000000000000011"),
                          HasSubstr("eval row 0 (step 2): acc1 50 != 51")));
  EXPECT_EQ(CompareLogs(a, b, /*max_differences=*/1).size(), 1u);
  b = Log();
  b.train.Truncate(2);
  EXPECT_THAT(CompareLogs(a, b), ElementsAre("train: 3 rows != 2 rows"));
}

// A column one log lacks (an older file, another task) is named once, never compared with NaN;
// one only the other has likewise. Timing columns are never named.
TEST(CompareLogsTest, AColumnOnlyOneLogHasIsNamed) {
  record::MetricsLog a = Log(), b = Log();
  std::vector<record::Column>& columns = b.train.mutable_columns();
  for (const char* gone : {"min_lr", "wall_time"}) {
    columns.erase(std::find_if(columns.begin(), columns.end(),
                               [gone](const record::Column& c) { return c.name == gone; }));
  }
  b.eval.AddColumn("new_metric", record::ColumnType::kFloat64);
  EXPECT_THAT(CompareLogs(a, b), ElementsAre("train column min_lr only in A",
                                             "eval column new_metric only in B"));
  EXPECT_THAT(CompareLogs(b, a), ElementsAre("train column min_lr only in B",
                                             "eval column new_metric only in A"));
}

void WriteRun(const std::string& dir, const record::MetricsLog& log) {
  std::filesystem::create_directories(dir);
  const record::FinetuneRecord task = record::MakeFinetuneRecord({});
  auto w = record::MetricsWriter::Create(dir + "/metrics.h5", {{"seed", int64_t{0}}},
                                         task.declaration);
  ASSERT_TRUE(w.ok()) << w.status();
  for (Group g : {Group::kTrain, Group::kEval}) {
    const record::Table& t = log.group(g);
    for (size_t i = 0; i < t.rows(); ++i) {
      record::NamedValues row;
      for (const record::Column& c : t.columns()) row.emplace_back(c.name, c.Get(i));
      g == Group::kTrain ? (*w)->AddTrain(row) : (*w)->AddEval(row);
    }
  }
  ASSERT_TRUE((*w)->Flush().ok());
}

TEST(CompareRunsTest, ReadsBothRunDirs) {
  const std::string tmp = std::getenv("TEST_TMPDIR");
  record::MetricsLog changed = Log();
  changed.train.Set("loss", 2, 0.25);
  WriteRun(tmp + "/a", Log());
  WriteRun(tmp + "/b", Log());
  WriteRun(tmp + "/c", changed);
  absl::StatusOr<ReproduceResult> same = CompareRuns(tmp + "/a", tmp + "/b");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->differences.empty());
  EXPECT_EQ(same->train_rows, 3u);
  EXPECT_EQ(same->eval_rows, 1u);
  absl::StatusOr<ReproduceResult> different = CompareRuns(tmp + "/a", tmp + "/c");
  ASSERT_TRUE(different.ok()) << different.status();
  EXPECT_THAT(different->differences, ElementsAre(HasSubstr("train row 2 (step 2): loss")));
  absl::StatusOr<ReproduceResult> missing = CompareRuns(tmp + "/a", tmp + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(tmp + "/nope/metrics.h5"));
}

// `launcher reproduce`: the rerun's MetricLogger lines become progress over all its steps.
TEST(Reproduce, RerunProgressFromTheTrainingLog) {
  std::FILE* out = std::tmpfile();
  util::Progress::Options options;
  options.out = out;
  options.terminal = false;
  options.interval = 0;  // a line at every update; real time: the child runs for real
  const std::string log = absl::StrCat(getenv("TEST_TMPDIR"), "/rerun.log");
  const std::string command = absl::StrCat(
      "for e in 0 1; do for i in 1 2 3 4; do echo \"Epoch: [$e]  [ $i/4]  eta: 0:00:01\" >>", log,
      "; sleep 0.3; done; done");
  {
    util::Progress p("reproduce: rerun", 0, options);
    EXPECT_EQ(RunWatchingLog(command, log, /*start_epoch=*/0, /*epochs=*/2, &p), 0);
    p.Finish();
  }
  std::string text(1 << 16, '\0');
  std::rewind(out);
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_THAT(text, HasSubstr("/8 ("));
  EXPECT_THAT(text, HasSubstr(", epoch 1/2\n"));
  EXPECT_THAT(text, HasSubstr("reproduce: rerun 8/8 (100%), "));
  EXPECT_THAT(text, HasSubstr(", epoch 2/2\n"));
  EXPECT_NE(RunWatchingLog("exit 3", log + ".none", 0, 1, nullptr), 0);
}

}  // namespace
}  // namespace convnextv2::launcher
