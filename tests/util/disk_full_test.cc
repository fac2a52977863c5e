// A real full disk: a small tmpfs mounted in a private mount namespace (needs root, so the test
// runs outside Bazel's sandbox: tags "local", "exclusive"). Writes that do not fit fail with an
// error naming the file and "No space left on device", leave the previous files intact and
// temporary files removed; with space again (the tmpfs grown) the same writer succeeds.
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include <ATen/ATen.h>

#include "convnextv2/checkpoint/file.h"
#include "convnextv2/record/metrics_log.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/util/files.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2 {
namespace {

using ::testing::HasSubstr;

class DiskFullTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    // A private mount namespace: the tmpfs vanishes with this process, whatever happens.
    if (unshare(CLONE_NEWNS) != 0) {
      setup_error_ = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
      return;
    }
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      setup_error_ = std::string("making / private: ") + std::strerror(errno);
      return;
    }
    dir_ = std::string(std::getenv("TEST_TMPDIR")) + "/small_disk";
    std::filesystem::create_directories(dir_);
    if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m") != 0) {
      setup_error_ = std::string("mounting a tmpfs: ") + std::strerror(errno);
    }
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CI runs as root)";
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      std::filesystem::remove_all(e.path());
    }
    Resize("1m");
  }

  static void Resize(const std::string& size) {
    ASSERT_EQ(mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()), 0)
        << std::strerror(errno);
  }

  static int CountTemporaries() {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      if (e.path().filename().string().find(".tmp.") != std::string::npos) ++n;
    }
    return n;
  }

  static std::string dir_;
  static std::string setup_error_;
};

std::string DiskFullTest::dir_;
std::string DiskFullTest::setup_error_;

TEST_F(DiskFullTest, AtomicWriteLeavesTheOldFile) {
  const std::string path = dir_ + "/config.pbtxt";
  ASSERT_TRUE(util::WriteFileAtomically(path, "old\n").ok());
  absl::Status s = util::WriteFileAtomically(path, std::string(2 << 20, 'x'));
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot write " + path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No space left on device"));
  EXPECT_EQ(*util::ReadFile(path), "old\n");
  EXPECT_EQ(CountTemporaries(), 0);
  Resize("4m");
  ASSERT_TRUE(util::WriteFileAtomically(path, std::string(2 << 20, 'x')).ok());
}

TEST_F(DiskFullTest, MetricsFlushLeavesTheOldLogAndSucceedsWithSpaceAgain) {
  const std::string path = dir_ + "/metrics.h5";
  const record::FinetuneRecord task = record::MakeFinetuneRecord({});
  auto w = record::MetricsWriter::Create(path, {{"seed", int64_t{1}}}, task.declaration);
  ASSERT_TRUE(w.ok()) << w.status();
  auto row = [](int64_t s) {
    return record::NamedValues{{"step", s}, {"loss", 1.0 / (s + 1)}};
  };
  for (int64_t s = 0; s < 100; ++s) (*w)->AddTrain(row(s));
  ASSERT_TRUE((*w)->Flush().ok());
  for (int64_t s = 100; s < 20000; ++s) (*w)->AddTrain(row(s));  // ~1.6 MB: does not fit
  absl::Status s = (*w)->Flush();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No space left on device"));
  absl::StatusOr<record::MetricsLog> log = record::ReadMetricsLog(path);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->train.rows(), 100u);
  EXPECT_EQ(CountTemporaries(), 0);
  Resize("8m");
  ASSERT_TRUE((*w)->Flush().ok());
  log = record::ReadMetricsLog(path);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->train.rows(), 20000u);
}

TEST_F(DiskFullTest, CheckpointSaveLeavesThePreviousCheckpoint) {
  const std::string path = dir_ + "/checkpoint-last.pth";
  checkpoint::Checkpoint small;
  small.header.set_model("convnextv2_atto");
  small.Add("model.head.bias", at::arange(10, at::kFloat));
  ASSERT_TRUE(checkpoint::WriteCheckpoint(path, small).ok());
  checkpoint::Checkpoint big = small;
  big.Add("model.big", at::ones({512, 1024}, at::kFloat));  // 2 MiB
  absl::Status s = checkpoint::WriteCheckpoint(path, big);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No space left on device"));
  EXPECT_EQ(CountTemporaries(), 0);
  absl::StatusOr<checkpoint::Checkpoint> back = checkpoint::ReadCheckpoint(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->tensors.size(), 1u);
  EXPECT_TRUE(at::equal(back->tensors[0].second, small.tensors[0].second));
  Resize("8m");
  ASSERT_TRUE(checkpoint::WriteCheckpoint(path, big).ok());
  EXPECT_EQ(checkpoint::ReadCheckpoint(path)->tensors.size(), 2u);
}

}  // namespace
}  // namespace convnextv2
