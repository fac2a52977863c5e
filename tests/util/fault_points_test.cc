#include "convnextv2/util/fault_points.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "convnextv2/util/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::util {
namespace {

using ::testing::HasSubstr;

// Sets the fault variables for one test and clears them (and the counts) afterwards.
class FaultEnv {
 public:
  explicit FaultEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    Clear();
    for (const auto& [name, value] : vars) setenv(name, value, 1);
    ReloadFaultConfig();
  }
  ~FaultEnv() {
    Clear();
    ReloadFaultConfig();
  }

 private:
  static void Clear() {
    for (const char* v : {"CONVNEXTV2_FAULT", "CONVNEXTV2_FAULT_STOP", "CONVNEXTV2_FAULT_ERRNO",
                          "CONVNEXTV2_FAULT_DELAY_SEED", "CONVNEXTV2_FAULT_DELAY_MAX_US",
                          "CONVNEXTV2_FAULT_TRACE"}) {
      unsetenv(v);
    }
  }
};

std::string TempPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

int CountTemporaries(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
  }
  return n;
}

TEST(FaultPointsTest, UnsetDoesNothingAndCountsNothing) {
  FaultEnv env({});
  for (int i = 0; i < 100; ++i) {
    FaultPoint("a");
    EXPECT_EQ(FaultWriteErrno("a"), 0);
  }
  EXPECT_EQ(FaultPointCount("a"), 0);
  EXPECT_EQ(FaultDelayMicros("a", 1), 0);
}

TEST(FaultPointsTest, ErrnoAtTheNthOccurrenceOrFromItOn) {
  {
    FaultEnv env({{"CONVNEXTV2_FAULT_ERRNO", "w:2,v:1:EIO"}});
    EXPECT_EQ(FaultWriteErrno("w"), 0);
    EXPECT_EQ(FaultWriteErrno("w"), ENOSPC);
    EXPECT_EQ(FaultWriteErrno("w"), 0);
    EXPECT_EQ(FaultWriteErrno("v"), EIO);
    EXPECT_EQ(FaultWriteErrno("other"), 0);
    EXPECT_EQ(FaultPointCount("w"), 3);
  }
  {
    FaultEnv env({{"CONVNEXTV2_FAULT_ERRNO", "w:2+"}});
    EXPECT_EQ(FaultWriteErrno("w"), 0);
    FaultPoint("w");  // a plain point counts too: it is the same point
    EXPECT_EQ(FaultWriteErrno("w"), ENOSPC);
    EXPECT_EQ(FaultWriteErrno("w"), ENOSPC);
  }
}

TEST(FaultPointsDeathTest, KillsAtTheNthOccurrenceOfTheNamedPointOnly) {
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT", "p:3"}});
        FaultPoint("p");
        FaultPoint("q");
        FaultPoint("p");
        FaultPoint("p");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "fault point p #3: SIGKILL");
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT", "p:3"}});
        FaultPoint("p");
        FaultPoint("q");
        FaultPoint("q");
        FaultPoint("p");
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(FaultPointsDeathTest, StarCountsEveryPoint) {
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT", "*:3"}});
        FaultPoint("a");
        FaultPoint("b");
        FaultPoint("c");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "fault point c #1: SIGKILL");
}

TEST(FaultPointsDeathTest, AMalformedSettingExitsWithStatus2AndSaysWhatIsWrong) {
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT", "hdf5_write:x"}});
        FaultPoint("hdf5_write");
      },
      ::testing::ExitedWithCode(2), "CONVNEXTV2_FAULT=hdf5_write:x: occurrence 'x'");
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT_ERRNO", "w:1:EPERM"}});
        FaultPoint("w");
      },
      ::testing::ExitedWithCode(2), "errno 'EPERM' is not one of");
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT", "w:0"}});
        FaultPoint("w");
      },
      ::testing::ExitedWithCode(2), "not a count >= 1");
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT_DELAY_SEED", "-4"}});
        FaultPoint("w");
      },
      ::testing::ExitedWithCode(2), "CONVNEXTV2_FAULT_DELAY_SEED=-4");
}

TEST(FaultPointsDeathTest, TracePrintsEveryPoint) {
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT_TRACE", "1"}});
        FaultPoint("x");
        FaultPoint("x");
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "fault point x #1\nfault point x #2");
}

TEST(FaultPointsTest, SeededDelaysAreReproducibleBoundedAndSlept) {
  std::vector<int64_t> first;
  {
    FaultEnv env({{"CONVNEXTV2_FAULT_DELAY_SEED", "7"}, {"CONVNEXTV2_FAULT_DELAY_MAX_US", "5000"}});
    std::set<int64_t> distinct;
    for (int i = 1; i <= 50; ++i) {
      first.push_back(FaultDelayMicros("p", i));
      EXPECT_GE(first.back(), 0);
      EXPECT_LE(first.back(), 5000);
      distinct.insert(first.back());
    }
    EXPECT_GT(distinct.size(), 40u);
    EXPECT_NE(FaultDelayMicros("p", 1), FaultDelayMicros("q", 1));
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) FaultPoint("p");
    const int64_t slept = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
    EXPECT_GE(slept, first[0] + first[1] + first[2] + first[3] + first[4]);
  }
  {
    FaultEnv env({{"CONVNEXTV2_FAULT_DELAY_SEED", "7"}, {"CONVNEXTV2_FAULT_DELAY_MAX_US", "5000"}});
    for (int i = 1; i <= 50; ++i) EXPECT_EQ(FaultDelayMicros("p", i), first[i - 1]);
  }
  {
    FaultEnv env({{"CONVNEXTV2_FAULT_DELAY_SEED", "8"}, {"CONVNEXTV2_FAULT_DELAY_MAX_US", "5000"}});
    int same = 0;
    for (int i = 1; i <= 50; ++i) same += FaultDelayMicros("p", i) == first[i - 1];
    EXPECT_LT(same, 5);
  }
}

TEST(AtomicWriteFaultTest, InjectedDiskFullLeavesTheOldFileAndNamesPathAndError) {
  const std::string dir = TempPath("atomic_enospc");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/manifest.pbtxt";
  ASSERT_TRUE(WriteFileAtomically(path, "old contents\n").ok());
  {
    FaultEnv env({{"CONVNEXTV2_FAULT_ERRNO", "atomic_write:1"}});
    absl::Status s = WriteFileAtomically(path, "new contents\n");
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.message()), HasSubstr(path));
    EXPECT_THAT(std::string(s.message()), HasSubstr("No space left on device"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("is unchanged"));
    EXPECT_EQ(*ReadFile(path), "old contents\n");
    EXPECT_EQ(CountTemporaries(dir), 0);
    ASSERT_TRUE(WriteFileAtomically(path, "new contents\n").ok());  // only the first failed
    EXPECT_EQ(*ReadFile(path), "new contents\n");
  }
}

TEST(AtomicWriteFaultDeathTest, AKillBeforeTheRenameLeavesTheOldFile) {
  const std::string dir = TempPath("atomic_kill");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/config.pbtxt";
  ASSERT_TRUE(WriteFileAtomically(path, "old contents\n").ok());
  EXPECT_EXIT(
      {
        FaultEnv env({{"CONVNEXTV2_FAULT", "atomic_rename:1"}});
        (void)WriteFileAtomically(path, "new contents\n");
        _exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "atomic_rename #1");
  EXPECT_EQ(*ReadFile(path), "old contents\n");
}

// A child stopped at the 1st atomic_rename (CONVNEXTV2_FAULT_STOP) is frozen with the new data
// fsynced under its temporary name and the old file in place, after exactly the points before
// it; SIGCONT lets it finish the write.
TEST(AtomicWriteFaultTest, AStopBeforeTheRenameFreezesTheWriteUntilContinued) {
  const std::string dir = TempPath("atomic_stop");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/checkpoint.pth";
  ASSERT_TRUE(WriteFileAtomically(path, "old contents\n").ok());
  int done[2];
  ASSERT_EQ(pipe(done), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FaultEnv env({{"CONVNEXTV2_FAULT_STOP", "atomic_rename:1,p:2"}});
    FaultPoint("p");  // the 1st p passes
    const bool ok = WriteFileAtomically(path, "new contents\n").ok();  // stops before its rename
    (void)!write(done[1], ok ? "w" : "f", 1);
    FaultPoint("p");  // stops again
    (void)!write(done[1], "p", 1);
    _exit(0);
  }
  close(done[1]);
  auto wait_stopped = [&]() {
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, WUNTRACED), pid);
    return WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP;
  };
  char c = 0;
  ASSERT_TRUE(wait_stopped());
  EXPECT_EQ(*ReadFile(path), "old contents\n");
  EXPECT_EQ(CountTemporaries(dir), 1);  // written and fsynced, not renamed
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  ASSERT_EQ(read(done[0], &c, 1), 1);
  EXPECT_EQ(c, 'w');
  ASSERT_TRUE(wait_stopped());  // at the 2nd p, before its write
  EXPECT_EQ(*ReadFile(path), "new contents\n");
  EXPECT_EQ(CountTemporaries(dir), 0);
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  ASSERT_EQ(read(done[0], &c, 1), 1);
  EXPECT_EQ(c, 'p');
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(done[0]);
}

}  // namespace
}  // namespace convnextv2::util
