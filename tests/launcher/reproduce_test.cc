#include "launcher/reproduce.h"

#include <cstdlib>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::launcher {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

metrics::MetricsLog Log() {
  metrics::MetricsLog log;
  for (int s = 0; s < 3; ++s) {
    metrics::TrainRow r;
    r.step = s;
    r.loss = 1.0 / (s + 1);
    r.lr = 1e-3;
    r.wall_time = s;
    log.train.push_back(r);  // grad_norm stays NaN
  }
  metrics::EvalRow e;
  e.step = 2;
  e.acc1 = 50;
  log.eval.push_back(e);
  return log;
}

TEST(CompareLogsTest, EqualLogsIgnoringTimingAndNan) {
  metrics::MetricsLog a = Log(), b = Log();
  b.train[1].wall_time = 99;
  b.train[2].images_per_second = 5;
  b.eval[0].wall_time = 7;
  EXPECT_TRUE(CompareLogs(a, b).empty());
}

TEST(CompareLogsTest, ReportsTheFirstDifferencesBitwise) {
  metrics::MetricsLog a = Log(), b = Log();
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

void WriteRun(const std::string& dir, const metrics::MetricsLog& log) {
  std::filesystem::create_directories(dir);
  auto w = metrics::MetricsWriter::Create(dir + "/metrics.h5", {{"seed", int64_t{0}}});
  ASSERT_TRUE(w.ok()) << w.status();
  for (const metrics::TrainRow& r : log.train) (*w)->AddTrain(r);
  for (const metrics::EvalRow& r : log.eval) (*w)->AddEval(r);
  ASSERT_TRUE((*w)->Flush().ok());
}

TEST(CompareRunsTest, ReadsBothRunDirs) {
  const std::string tmp = std::getenv("TEST_TMPDIR");
  metrics::MetricsLog changed = Log();
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

}  // namespace
}  // namespace convnextv2::launcher
