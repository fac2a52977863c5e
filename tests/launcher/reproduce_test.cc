#include "launcher/reproduce.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/util/progress.h"

namespace convnextv2::launcher {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

record::MetricsLog Log() {
  record::MetricsLog log;
  for (int s = 0; s < 3; ++s) {
    record::TrainRow r;
    r.step = s;
    r.loss = 1.0 / (s + 1);
    r.lr = 1e-3;
    r.wall_time = s;
    log.train.push_back(r);  // grad_norm stays NaN
  }
  record::EvalRow e;
  e.step = 2;
  e.acc1 = 50;
  log.eval.push_back(e);
  return log;
}

TEST(CompareLogsTest, EqualLogsIgnoringTimingAndNan) {
  record::MetricsLog a = Log(), b = Log();
  b.train[1].wall_time = 99;
  b.train[2].images_per_second = 5;
  b.eval[0].wall_time = 7;
  EXPECT_TRUE(CompareLogs(a, b).empty());
}

TEST(CompareLogsTest, ReportsTheFirstDifferencesBitwise) {
  record::MetricsLog a = Log(), b = Log();
  b.train[1].loss = std::nextafter(a.train[1].loss, 1.0);  // one ulp
  b.eval[0].acc1 = 51;
  EXPECT_THAT(CompareLogs(a, b),
              ElementsAre(HasSubstr("train row 1 (step 1): loss 0.5 != 0.50000000000000011"),
                          HasSubstr("eval row 0 (step 2): acc1 50 != 51")));
  EXPECT_EQ(CompareLogs(a, b, /*max_differences=*/1).size(), 1u);
  b = Log();
  b.train.pop_back();
  EXPECT_THAT(CompareLogs(a, b), ElementsAre("train: 3 rows != 2 rows"));
}

void WriteRun(const std::string& dir, const record::MetricsLog& log) {
  std::filesystem::create_directories(dir);
  auto w = record::MetricsWriter::Create(dir + "/metrics.h5", {{"seed", int64_t{0}}});
  ASSERT_TRUE(w.ok()) << w.status();
  for (const record::TrainRow& r : log.train) (*w)->AddTrain(r);
  for (const record::EvalRow& r : log.eval) (*w)->AddEval(r);
  ASSERT_TRUE((*w)->Flush().ok());
}

TEST(CompareRunsTest, ReadsBothRunDirs) {
  const std::string tmp = std::getenv("TEST_TMPDIR");
  record::MetricsLog changed = Log();
  changed.train[2].loss = 0.25;
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
