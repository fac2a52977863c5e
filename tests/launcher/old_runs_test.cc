// Run dirs written by earlier code stay readable: they resume, compare and report. The fixtures
// in tests/record/testdata were written by the code before the declared record (format v1,
// commit 3c0737e; tests/record/testdata/README.md says how):
//   finetune_v1/        a finished 2-epoch fine-tuning run (4 train rows, 2 eval rows)
//   sample_v1_missing_min_lr.h5   write_sample_log's file with /train/min_lr deleted
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/record/manifest.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/util/files.h"
#include "gmock/gmock.h"
#include "launcher/report.h"
#include "launcher/report_html.h"
#include "launcher/reproduce.h"

namespace convnextv2::launcher {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;

const std::string kTestdata = "tests/record/testdata/";

const record::Declaration& Finetune() {
  static const auto* r = new record::FinetuneRecord(record::MakeFinetuneRecord({}));
  return r->declaration;
}

// A writable copy of a fixture (file or dir) under TEST_TMPDIR.
std::string Copy(const std::string& fixture, const std::string& name) {
  const std::string to = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  fs::remove_all(to);
  fs::create_directories(fs::path(to).parent_path());
  fs::copy(kTestdata + fixture, to, fs::copy_options::recursive);
  fs::permissions(to, fs::perms::owner_write, fs::perm_options::add);
  if (fs::is_directory(to)) {
    for (const auto& e : fs::recursive_directory_iterator(to)) {
      fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    }
  }
  return to;
}

TEST(OldRuns, AVersion1RunReadsWithItsColumnsAndNoneItLacks) {
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(kTestdata + "finetune_v1/metrics.h5");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->format_version, 1);
  ASSERT_EQ(log->train.rows(), 4u);
  ASSERT_EQ(log->eval.rows(), 2u);
  EXPECT_EQ(log->train.columns().size(), 10u);  // v1: step, epoch and 8 floats
  EXPECT_EQ(log->eval.columns().size(), 9u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(log->train.Step(i), static_cast<int64_t>(i));  // global micro-batch index
    EXPECT_GT(log->train.Value("loss", i), 0);
    EXPECT_TRUE(std::isnan(log->train.Value("optimizer_step", i)));  // not in v1: absent
  }
  EXPECT_EQ(log->eval.Step(1), 3);
  // log.txt printed the same evaluation with %.10g.
  absl::StatusOr<std::string> text = util::ReadFile(kTestdata + "finetune_v1/log.txt");
  ASSERT_TRUE(text.ok());
  const double acc1 = log->eval.Value("acc1", 1);
  EXPECT_THAT(*text, HasSubstr(absl::StrFormat("\"test_acc1\": %.10g", acc1)));
}

TEST(OldRuns, AVersion1RunResumesKeepingEveryColumnAndGainsTheNewOnes) {
  const std::string dir = Copy("finetune_v1", "resume_v1");
  auto w = record::MetricsWriter::Resume(dir + "/metrics.h5", {{"attempt_note", std::string("2")}},
                                         /*last_step=*/1, Finetune());
  ASSERT_TRUE(w.ok()) << w.status();
  (*w)->AddTrain({{"step", 2}, {"epoch", 1}, {"optimizer_step", 2}, {"loss", 0.5}});
  ASSERT_TRUE((*w)->Flush().ok());
  w->reset();
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(dir + "/metrics.h5");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->format_version, record::kFormatVersion);  // bumped on the rewrite
  ASSERT_EQ(log->train.rows(), 3u);
  EXPECT_EQ(log->eval.rows(), 1u);  // the evaluation after step 1
  for (const char* v1 : {"class_acc", "images_per_second", "wall_time", "min_lr"}) {
    EXPECT_NE(log->train.Find(v1), nullptr) << v1;
  }
  EXPECT_TRUE(std::isnan(log->train.Value("optimizer_step", 0)));  // old rows: absent
  EXPECT_EQ(log->train.Value("optimizer_step", 2), 2);
  EXPECT_EQ(log->train.Value("loss", 2), 0.5);
  EXPECT_TRUE(std::isnan(log->train.Value("class_acc", 2)));  // a new row: NaN where unset
  // The manifest of the old run still parses.
  EXPECT_TRUE(record::ReadManifest(dir + "/manifest.pbtxt").ok());
}

TEST(OldRuns, AVersion1RunComparesAndNamesTheColumnsOnlyOneSideHas) {
  absl::StatusOr<ReproduceResult> same =
      CompareRuns(kTestdata + "finetune_v1", kTestdata + "finetune_v1");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(same->differences.empty());
  EXPECT_EQ(same->train_rows, 4u);
  // Resumed after its last step with nothing added: the same rows, the new columns only in B.
  const std::string dir = Copy("finetune_v1", "compare_v1");
  ASSERT_TRUE(record::MetricsWriter::Resume(dir + "/metrics.h5", {}, 3, Finetune()).ok());
  absl::StatusOr<ReproduceResult> r = CompareRuns(kTestdata + "finetune_v1", dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->differences, Contains("train column optimizer_step only in B"));
  for (const std::string& d : r->differences) EXPECT_THAT(d, HasSubstr("only in B"));
}

TEST(OldRuns, AVersion1RunReports) {
  SweepManifest m;
  m.mutable_sweep()->set_name("old");
  SweepTask* t = m.add_tasks();
  t->set_name("task_000");
  t->set_run_dir(kTestdata + "finetune_v1");
  std::vector<TaskSummary> tasks = SummarizeTasks(m, /*show_progress=*/false);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].state, "FINISHED");
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(kTestdata + "finetune_v1/metrics.h5");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(tasks[0].final_acc1, log->eval.Value("acc1", 1));
  const std::string html = ReportHtml(m, tasks);
  EXPECT_THAT(html, HasSubstr(">train loss</text>"));
  EXPECT_THAT(html, HasSubstr(">eval acc@1</text>"));
  EXPECT_THAT(ReportTable(m, tasks, TableFormat::kText), HasSubstr("task_000"));
}

TEST(OldRuns, AFileWithoutAColumnReadsItAsNanAndResumesComparesReports) {
  const std::string fixture = kTestdata + "sample_v1_missing_min_lr.h5";
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(fixture);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.rows(), 5u);  // write_sample_log: steps 0..4, one eval
  EXPECT_EQ(log->train.Find("min_lr"), nullptr);
  EXPECT_TRUE(std::isnan(log->train.Value("min_lr", 0)));
  EXPECT_EQ(log->train.Value("loss", 4), 0.5);
  EXPECT_EQ(log->eval.Value("acc1", 0), 62);

  // Resume keeps the file's columns; min_lr comes back (declared), absent in the old rows.
  const std::string dir = Copy("sample_v1_missing_min_lr.h5", "missing/metrics.h5");
  auto w = record::MetricsWriter::Resume(dir, {}, /*last_step=*/2, Finetune());
  ASSERT_TRUE(w.ok()) << w.status();
  (*w)->AddTrain({{"step", 3}, {"epoch", 1}, {"loss", 0.25}, {"min_lr", 1e-5}});
  w->reset();
  log = record::ReadMetricsLog(dir);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->train.rows(), 4u);
  EXPECT_TRUE(std::isnan(log->train.Value("min_lr", 2)));
  EXPECT_EQ(log->train.Value("min_lr", 3), 1e-5);

  // Compare: the column only the other side has is named, not compared against NaN.
  const std::string a = absl::StrCat(getenv("TEST_TMPDIR"), "/missing_a");
  fs::create_directories(a);
  fs::copy_file(fixture, a + "/metrics.h5", fs::copy_options::overwrite_existing);
  const std::string b = absl::StrCat(getenv("TEST_TMPDIR"), "/missing_b");
  fs::create_directories(b);
  {
    auto full = record::MetricsWriter::Create(b + "/metrics.h5", {}, Finetune());
    ASSERT_TRUE(full.ok());
    for (int64_t s = 0; s < 5; ++s) {
      (*full)->AddTrain({{"step", s}, {"epoch", s / 3}, {"loss", 1.5 - 0.25 * s}, {"lr", 0.001}});
    }
    (*full)->AddEval({{"step", 2}, {"epoch", 0}, {"acc1", 62}});
  }
  absl::StatusOr<ReproduceResult> r = CompareRuns(a, b);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->differences, Contains("train column min_lr only in B"));
  for (const std::string& d : r->differences) EXPECT_THAT(d, HasSubstr("only in B"));

  // Report.
  SweepManifest m;
  SweepTask* t = m.add_tasks();
  t->set_name("task_000");
  t->set_run_dir(a);
  std::vector<TaskSummary> tasks = SummarizeTasks(m, false);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].final_acc1, 62);
  EXPECT_THAT(ReportHtml(m, tasks), HasSubstr(">eval acc@1</text>"));
}

}  // namespace
}  // namespace convnextv2::launcher
