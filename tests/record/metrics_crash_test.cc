// metrics.h5 under SIGKILL and disk-full: a child process (metrics_writer_child) writes a log the
// way a run does and is killed at named points inside the HDF5 write (CONVNEXTV2_FAULT) and at
// random instants; after every kill this reader and h5py (check_killed_logs.py, plain open)
// must read every row the child had reported flushed, and nothing but whole flushed states.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/util/fault_points.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/record/sample_rows.h"

extern char** environ;

namespace convnextv2::record {
namespace {

using ::testing::HasSubstr;

std::string Runfile(const std::string& rel) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", rel);
}

std::string TempDir(const std::string& name) {
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

struct ChildResult {
  bool killed = false;    // ended by SIGKILL
  int exit_status = -1;   // when it exited
  int64_t reported = -1;  // the last step count it reported durable (-1: none)
  std::string stdout_text;
};

// Runs the writer child with `env` added; kills it after `kill_after_us` (< 0: never).
ChildResult RunChild(const std::vector<std::string>& args, const std::vector<std::string>& env,
                     int64_t kill_after_us) {
  int pipe_fds[2];
  EXPECT_EQ(pipe(pipe_fds), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> all_args = {Runfile("tests/record/metrics_writer_child")};
  all_args.insert(all_args.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all_args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("CONVNEXTV2_FAULT", 0) != 0) env_copy.push_back(*e);
  }
  env_copy.insert(env_copy.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (std::string& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  ChildResult r;
  if (spawned != 0) {
    ADD_FAILURE() << "cannot start " << argv[0];
    close(pipe_fds[0]);
    return r;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kill_after_us);
  bool sent = false;
  char buf[4096];
  for (;;) {
    int timeout_ms = 1000;
    if (kill_after_us >= 0 && !sent) {
      const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) {
        kill(pid, SIGKILL);
        sent = true;
      } else if (left < 1000) {
        std::this_thread::sleep_for(std::chrono::microseconds(left));
        continue;
      } else {
        timeout_ms = static_cast<int>(left / 1000);
      }
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (poll(&p, 1, timeout_ms) > 0) {
      const ssize_t n = read(pipe_fds[0], buf, sizeof(buf));
      if (n <= 0) break;  // the child is gone (EOF)
      r.stdout_text.append(buf, n);
    }
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (WIFEXITED(status)) r.exit_status = WEXITSTATUS(status);
  for (absl::string_view line : absl::StrSplit(r.stdout_text, '\n', absl::SkipEmpty())) {
    int64_t v = 0;
    // A line cut by the kill cannot be a complete number followed by '\n'; SkipEmpty and the
    // split keep only full lines except maybe the last, which the child never leaves partial
    // (one printf of a short line and fflush: one write).
    if (absl::SimpleAtoi(line, &v)) r.reported = v;
  }
  return r;
}

// The log at `path` must hold exactly the first `rows` sample rows (and their evals).
void ExpectSamplePrefix(const MetricsLog& log, int64_t rows, const std::string& what) {
  ASSERT_EQ(static_cast<int64_t>(log.train.rows()), rows) << what;
  for (int64_t s = 0; s < rows; ++s) {
    const NamedValues want = testing::SampleTrainRow(s);
    ASSERT_EQ(log.train.Step(s), s) << what;
    ASSERT_EQ(log.train.Value("loss", s), testing::SampleValue(want, "loss"))
        << what << " step " << s;
    ASSERT_EQ(log.train.Value("images_per_second", s),
              testing::SampleValue(want, "images_per_second"))
        << what << " step " << s;
    ASSERT_TRUE(std::isnan(log.train.Value("grad_norm", s))) << what;
  }
  ASSERT_EQ(static_cast<int64_t>(log.eval.rows()), rows / 10) << what;
  for (size_t i = 0; i < log.eval.rows(); ++i) {
    ASSERT_EQ(log.eval.Step(i), static_cast<int64_t>(i * 10 + 9)) << what;
    ASSERT_EQ(log.eval.Value("acc1", i),
              testing::SampleValue(testing::SampleEvalRow(i * 10 + 9), "acc1"))
        << what;
  }
  ASSERT_EQ(AttributeText(log.attributes, "config"), "train { seed: 3 }\n") << what;
}

// Keeps a copy of the log for the h5py pass.
void KeepForH5py(const std::string& path, const std::string& keep_dir, int index, int64_t rows) {
  const std::string name = absl::StrCat("kill_", index, ".h5");
  std::filesystem::copy_file(path, keep_dir + "/" + name,
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(keep_dir + "/index.txt", std::ios::app) << name << " " << rows << "\n";
}

void ExpectH5pyReadsAll(const std::string& keep_dir) {
  const std::string cmd = absl::StrCat("/usr/bin/python3 ", Runfile("tests/record/check_killed_logs.py"),
                                       " ", keep_dir);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

int CountTemporaries(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
  }
  return n;
}

// Kills inside the HDF5 write (between the datasets of one snapshot), before its bytes are
// written and just before the rename: the file is the previous flushed state, exactly what the
// child last reported.
TEST(MetricsCrashTest, KillsInsideTheHdf5WriteKeepEveryFlushedRow) {
  const std::string dir = TempDir("named");
  const std::string keep = TempDir("named_keep");
  const std::string path = dir + "/metrics.h5";
  // 201 steps, a flush every 20: 12 snapshots (with the one Create writes), each built from one
  // dataset per declared column, 19 or more (a point after each and one when the image is
  // complete), then written through
  // util::WriteFileAtomically (atomic_write before the data, atomic_rename before the rename).
  std::vector<std::string> faults;
  for (int k = 1; k <= 12 * 19; k += 7) faults.push_back(absl::StrCat("hdf5_write:", k));
  for (int k = 1; k <= 12; k += 2) faults.push_back(absl::StrCat("atomic_write:", k));
  for (int k = 2; k <= 12; k += 2) faults.push_back(absl::StrCat("atomic_rename:", k));
  int index = 0;
  for (const std::string& fault : faults) {
    std::filesystem::remove(path);
    ChildResult r = RunChild({path, "0", "201", "20"}, {"CONVNEXTV2_FAULT=" + fault}, -1);
    ASSERT_TRUE(r.killed) << fault << ": the fault point did not kill the child (exit "
                          << r.exit_status << ")";
    // The very first snapshot (Create's) may be the one killed: then no file exists yet, which a
    // resumed run treats as a new log.
    if (r.reported < 0 && !std::filesystem::exists(path)) continue;
    absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
    ASSERT_TRUE(log.ok()) << fault << ": " << log.status();
    ExpectSamplePrefix(*log, std::max<int64_t>(r.reported, 0), fault);
    KeepForH5py(path, keep, index++, std::max<int64_t>(r.reported, 0));
  }
  EXPECT_GE(index, 40);
  ExpectH5pyReadsAll(keep);
}

// A run relaunched until done, killed at random instants (with seeded random delays at the
// fault points, so kills land inside writes too): after each kill the log holds at least every
// reported row and only whole flushed states; the finished log equals an unstopped one.
TEST(MetricsCrashTest, RelaunchUntilDoneUnderRandomKillsEndsEqualToAnUnstoppedRun) {
  const std::string dir = TempDir("random");
  const std::string keep = TempDir("random_keep");
  const std::string path = dir + "/metrics.h5";
  constexpr int64_t kSteps = 600, kEvery = 25;
  const uint32_t seed = 20261129;
  std::mt19937 rng(seed);
  int kills = 0, attempts = 0, kept = 0, rounds = 0;
  // Rounds of relaunch-until-done from a new log, until 30 kills in all (a fast machine
  // finishes a round in fewer kills).
  while (kills < 30) {
    ++rounds;
    std::filesystem::remove(path);
    int64_t resume_at = 0;  // the "checkpoint": the last step count reported durable
    int64_t previous_rows = 0;
    int round_kills = 0;
    for (bool done = false; !done;) {
      ASSERT_LT(++attempts, 300) << "no progress (seed " << seed << ")";
      // After 12 kills in a round let it finish; before, kill within 0-300 ms of the start (a
      // flush with its two fsyncs takes ~15 ms here, plus up to 18 random delays of <= 2 ms).
      const int64_t kill_after =
          round_kills >= 12 ? -1 : std::uniform_int_distribution<int64_t>(0, 300000)(rng);
      ChildResult r = RunChild(
          {path, absl::StrCat(resume_at), absl::StrCat(kSteps), absl::StrCat(kEvery)},
          {absl::StrCat("CONVNEXTV2_FAULT_DELAY_SEED=", attempts),
           "CONVNEXTV2_FAULT_DELAY_MAX_US=2000"},
          kill_after);
      const std::string what = absl::StrCat("attempt ", attempts, " (seed ", seed,
                                            ", kill after ", kill_after, " us, resumed at ",
                                            resume_at, ")");
      if (!r.killed) {
        ASSERT_EQ(r.exit_status, 0) << what;
        done = true;
      } else {
        ++kills;
        ++round_kills;
      }
      if (!std::filesystem::exists(path)) {
        ASSERT_EQ(resume_at, 0) << what << ": the log vanished";
        continue;
      }
      absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
      ASSERT_TRUE(log.ok()) << what << ": " << log.status();
      const int64_t rows = static_cast<int64_t>(log->train.rows());
      const int64_t durable = std::max(resume_at, r.reported);
      // Whole flushed states only (every flush is at a multiple of kEvery), nothing reported
      // lost, and at most the one flush that completed after the last report beyond it (or the
      // previous attempt's file, when the kill came before the resume rewrote it).
      ASSERT_GE(rows, durable) << what;
      ASSERT_EQ(rows % kEvery, 0) << what << ": " << rows << " rows";
      ASSERT_LE(rows, std::max(previous_rows, durable + kEvery)) << what;
      previous_rows = rows;
      ExpectSamplePrefix(*log, rows, what);
      KeepForH5py(path, keep, attempts, rows);
      ++kept;
      resume_at = std::max(resume_at, r.reported);
    }
    absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
    ASSERT_TRUE(log.ok()) << log.status();
    ExpectSamplePrefix(*log, kSteps, absl::StrCat("finished log of round ", rounds));
    EXPECT_EQ(CountTemporaries(dir), 0) << "a later writer removes what a killed one left";
  }
  EXPECT_GE(kept, kills / 2) << "most kills must come after the log exists";
  std::printf("%d kills over %d attempts in %d rounds, %d logs read back (seed %u)\n", kills,
              attempts, rounds, kept, seed);
  ExpectH5pyReadsAll(keep);
}

TEST(MetricsCrashTest, InjectedDiskFullLeavesThePreviousLogAndKeepsTheRowsForTheNextFlush) {
  const std::string dir = TempDir("enospc");
  const std::string path = dir + "/metrics.h5";
  struct NoFaultsAfter {
    ~NoFaultsAfter() {
      unsetenv("CONVNEXTV2_FAULT_ERRNO");
      util::ReloadFaultConfig();
    }
  } no_faults_after;
  unsetenv("CONVNEXTV2_FAULT_ERRNO");
  util::ReloadFaultConfig();
  auto w = MetricsWriter::Create(path, {{"config", std::string("train { seed: 3 }\n")}},
                                 testing::SampleDeclaration());
  ASSERT_TRUE(w.ok()) << w.status();
  for (int64_t s = 0; s < 30; ++s) (*w)->AddTrain(testing::SampleTrainRow(s));
  ASSERT_TRUE((*w)->Flush().ok());

  setenv("CONVNEXTV2_FAULT_ERRNO", "atomic_write:1+", 1);  // disk full from now on
  util::ReloadFaultConfig();
  for (int64_t s = 30; s < 50; ++s) (*w)->AddTrain(testing::SampleTrainRow(s));
  absl::Status s = (*w)->Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No space left on device"));
  EXPECT_FALSE((*w)->SetAttributes({{"exit_status", int64_t{1}}}).ok());
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->train.rows(), 30u);
  EXPECT_EQ(CountTemporaries(dir), 0);

  unsetenv("CONVNEXTV2_FAULT_ERRNO");  // space again
  util::ReloadFaultConfig();
  ASSERT_TRUE((*w)->Flush().ok());
  log = ReadMetricsLog(path);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(log->train.rows(), 50u);
  EXPECT_EQ(AttributeText(log->attributes, "exit_status"), "1");
}

// What a flush costs for a long run (printed; the README quotes it).
TEST(MetricsCrashTest, FlushCostOfALongRun) {
  const std::string dir = TempDir("cost");
  auto w = MetricsWriter::Create(dir + "/metrics.h5", {}, testing::SampleDeclaration());
  ASSERT_TRUE(w.ok());
  for (int64_t rows : {10000, 100000}) {
    while (static_cast<int64_t>((*w)->log().train.rows()) < rows) {
      (*w)->AddTrain(testing::SampleTrainRow((*w)->log().train.rows()));
    }
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE((*w)->Flush().ok());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("flush of %lld training rows: %.1f ms, file %lld bytes\n",
                static_cast<long long>(rows), ms,
                static_cast<long long>(std::filesystem::file_size(dir + "/metrics.h5")));
  }
}

}  // namespace
}  // namespace convnextv2::record
