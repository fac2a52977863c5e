#include "convnextv2/dist/time_limit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace convnextv2::dist {
namespace {

using ::testing::HasSubstr;
using Clock = TimeLimit::Clock;

int64_t Seconds(absl::string_view text) {
  absl::StatusOr<std::optional<int64_t>> s = ParseSlurmTime(text);
  EXPECT_TRUE(s.ok()) << text << ": " << s.status();
  EXPECT_TRUE(s.ok() && s->has_value()) << text;
  return s.ok() && s->has_value() ? **s : -1;
}

TEST(ParseSlurmTimeTest, EveryFormOfSbatchAndSqueue) {
  EXPECT_EQ(Seconds("90"), 90 * 60);  // sbatch: a lone number is minutes
  EXPECT_EQ(Seconds("9:59"), 9 * 60 + 59);
  EXPECT_EQ(Seconds("0:07"), 7);
  EXPECT_EQ(Seconds("04:00:00"), 4 * 3600);
  EXPECT_EQ(Seconds("1:02:03"), 3723);
  EXPECT_EQ(Seconds("2-3"), 2 * 86400 + 3 * 3600);
  EXPECT_EQ(Seconds("1-00:30"), 86400 + 30 * 60);
  EXPECT_EQ(Seconds("1-02:03:04"), 86400 + 2 * 3600 + 3 * 60 + 4);
  EXPECT_EQ(Seconds(" 5:00\n"), 300);
  for (const char* none : {"UNLIMITED", "INFINITE", "NOT_SET", "unlimited"}) {
    absl::StatusOr<std::optional<int64_t>> s = ParseSlurmTime(none);
    ASSERT_TRUE(s.ok()) << none;
    EXPECT_FALSE(s->has_value()) << none;
  }
}

TEST(ParseSlurmTimeTest, MalformedIsAnErrorNamingTheText) {
  for (const char* bad : {"", "abc", "1:2:3:4", "-5", "1-", "1-2:3:4:5", "5:", ":5", "1--2", "x-1"}) {
    absl::StatusOr<std::optional<int64_t>> s = ParseSlurmTime(bad);
    EXPECT_FALSE(s.ok()) << "'" << bad << "'";
    if (!s.ok()) {
      EXPECT_THAT(std::string(s.status().message()), HasSubstr("is not a Slurm time"));
    }
  }
}

TEST(TimeLimitTest, NearOnlyWithinTheLeadTime) {
  const Clock::time_point t0 = Clock::now();
  const TimeLimit limit(t0 + std::chrono::seconds(100), 30, "test");
  EXPECT_TRUE(limit.active());
  EXPECT_FALSE(limit.Near(t0));
  EXPECT_FALSE(limit.Near(t0 + std::chrono::seconds(70)));
  EXPECT_TRUE(limit.Near(t0 + std::chrono::seconds(71)));
  EXPECT_TRUE(limit.Near(t0 + std::chrono::seconds(200)));  // past the limit
  EXPECT_EQ(limit.SecondsLeft(t0 + std::chrono::seconds(60)), 40);
  const TimeLimit none;
  EXPECT_FALSE(none.active());
  EXPECT_FALSE(none.Near(t0 + std::chrono::hours(1000)));
}

class SlurmEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"}) unsetenv(v);
  }
  void TearDown() override { SetUp(); }
};

TEST_F(SlurmEnvTest, JobSpecNamesTheArrayTaskNotTheWholeArray) {
  EXPECT_EQ(SlurmJobSpec(), "");
  setenv("SLURM_JOB_ID", "12", 1);
  EXPECT_EQ(SlurmJobSpec(), "12");
  // The last task of an array has SLURM_JOB_ID == SLURM_ARRAY_JOB_ID; "12" would be all tasks.
  setenv("SLURM_ARRAY_JOB_ID", "12", 1);
  setenv("SLURM_ARRAY_TASK_ID", "3", 1);
  EXPECT_EQ(SlurmJobSpec(), "12_3");
}

TEST_F(SlurmEnvTest, OffOutsideSlurmAndWithoutALeadTime) {
  EXPECT_FALSE(TimeLimit::FromSlurm(300).active());
  EXPECT_THAT(TimeLimit::FromSlurm(300).description(), HasSubstr("not a Slurm job"));
  setenv("SLURM_JOB_ID", "12", 1);
  EXPECT_FALSE(TimeLimit::FromSlurm(0).active());
}

// A fake squeue on PATH stands in for the cluster: it records its arguments and prints %L.
class FakeSqueueTest : public SlurmEnvTest {
 protected:
  void SetUp() override {
    SlurmEnvTest::SetUp();
    dir_ = std::string(std::getenv("TEST_TMPDIR"));
    old_path_ = std::getenv("PATH");
    setenv("PATH", (dir_ + ":" + old_path_).c_str(), 1);
  }
  void TearDown() override {
    setenv("PATH", old_path_.c_str(), 1);
    SlurmEnvTest::TearDown();
  }
  void FakeSqueue(const std::string& output, int rc) {
    const std::string path = dir_ + "/squeue";
    std::ofstream(path) << "#!/bin/sh\necho \"$@\" >" << dir_ << "/squeue.args\nprintf '"
                        << output << "'\nexit " << rc << "\n";
    chmod(path.c_str(), 0755);
  }
  std::string Args() {
    std::ifstream in(dir_ + "/squeue.args");
    std::string line;
    std::getline(in, line);
    return line;
  }
  std::string dir_, old_path_;
};

TEST_F(FakeSqueueTest, ReadsTheArrayTasksTimeLeft) {
  FakeSqueue("1:00:00\\n", 0);
  setenv("SLURM_JOB_ID", "12", 1);
  setenv("SLURM_ARRAY_JOB_ID", "12", 1);
  setenv("SLURM_ARRAY_TASK_ID", "1", 1);
  const Clock::time_point before = Clock::now();
  const TimeLimit limit = TimeLimit::FromSlurm(300);
  EXPECT_EQ(Args(), "-h -j 12_1 -o %L");
  ASSERT_TRUE(limit.active()) << limit.description();
  EXPECT_EQ(limit.lead_seconds(), 300);
  EXPECT_NEAR(limit.SecondsLeft(before), 3600, 2);
  EXPECT_FALSE(limit.Near(before));
  EXPECT_TRUE(limit.Near(before + std::chrono::seconds(3302)));
  EXPECT_THAT(limit.description(), HasSubstr("job 12_1: 3600 s left"));
}

TEST_F(FakeSqueueTest, NoLimitOrNoAnswerMeansNotWatched) {
  setenv("SLURM_JOB_ID", "7", 1);
  FakeSqueue("UNLIMITED\\n", 0);
  TimeLimit limit = TimeLimit::FromSlurm(300);
  EXPECT_FALSE(limit.active());
  EXPECT_THAT(limit.description(), HasSubstr("job 7 has no time limit"));
  FakeSqueue("", 1);
  limit = TimeLimit::FromSlurm(300);
  EXPECT_FALSE(limit.active());
  EXPECT_THAT(limit.description(), HasSubstr("unknown"));
  FakeSqueue("soon\\n", 0);
  EXPECT_FALSE(TimeLimit::FromSlurm(300).active());
}

}  // namespace
}  // namespace convnextv2::dist
