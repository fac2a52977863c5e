#include "convnextv2/tensorboard/event_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convnextv2/tensorboard/event.pb.h"
#include "convnextv2/util/files.h"

namespace convnextv2::tensorboard {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The virtual environment tools/setup.sh creates, with the `tensorboard` PyPI package.
constexpr char kPython[] = "/opt/convnextv2-venv/bin/python";

std::string TmpDir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// What TensorBoard's readers make of a directory (tests/tensorboard/read_events.py).
struct Seen {
  int records = -1;
  std::multiset<std::tuple<std::string, int64_t, double>> raw;  // every value of every file
  std::map<std::pair<std::string, int64_t>, std::pair<double, double>> scalars;  // value, wall
  int scalar_count = 0;
};

Seen ReadWithTensorBoard(const std::string& dir) {
  Seen seen;
  const std::string cmd =
      absl::StrCat(kPython, " tests/tensorboard/read_events.py ", dir, " 2>&1");
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  if (pipe == nullptr) return seen;
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) out.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << out;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f[0] == "records" && f.size() == 2) {
      EXPECT_TRUE(absl::SimpleAtoi(f[1], &seen.records)) << line;
    } else if (f[0] == "raw" && f.size() == 4) {
      int64_t step;
      double value;
      EXPECT_TRUE(absl::SimpleAtoi(f[2], &step) && absl::SimpleAtod(f[3], &value)) << line;
      seen.raw.insert({f[1], step, value});
    } else if (f[0] == "scalar" && f.size() == 5) {
      int64_t step;
      double value, wall;
      EXPECT_TRUE(absl::SimpleAtoi(f[2], &step) && absl::SimpleAtod(f[3], &value) &&
                  absl::SimpleAtod(f[4], &wall))
          << line;
      seen.scalars[{f[1], step}] = {value, wall};
      ++seen.scalar_count;
    } else {
      ADD_FAILURE() << "unexpected output: " << line;
    }
  }
  return seen;
}

bool HaveTensorBoard() { return fs::exists(kPython); }

// The value EventAccumulator returned for (tag, step); NaN (and a failure) when it has none.
double Value(const Seen& seen, const std::string& tag, int64_t step) {
  auto it = seen.scalars.find({tag, step});
  if (it == seen.scalars.end()) {
    ADD_FAILURE() << "TensorBoard returned no " << tag << " at step " << step;
    return std::nan("");
  }
  return it->second.first;
}

TEST(RecordTest, Crc32cAndFraming) {
  // The CRC-32C check value, and TensorFlow's mask of it.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  const uint32_t crc = 0xE3069283u;
  EXPECT_EQ(MaskedCrc32c("123456789"), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
  const std::string r = EncodeRecord("abc");
  ASSERT_EQ(r.size(), 3u + 16u);
  EXPECT_EQ(r.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(r.substr(12, 3), "abc");
}

TEST(RecordTest, ReadRecordsFindsTornTailsAndCorruption) {
  const std::string dir = TmpDir("records");
  const std::string path = dir + "/events.out.tfevents.1.h";
  const std::string good = EncodeRecord("first") + EncodeRecord("second");
  ASSERT_TRUE(util::WriteFileAtomically(path, good + EncodeRecord("third").substr(0, 14)).ok());
  absl::StatusOr<Records> r = ReadRecords(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->data, ::testing::ElementsAre("first", "second"));
  EXPECT_EQ(r->torn_bytes, 14u);

  std::string bad = good;
  bad[12 + 2] ^= 1;  // inside "first"
  ASSERT_TRUE(util::WriteFileAtomically(path, bad).ok());
  r = ReadRecords(path);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr(path + ": the record at byte 0 fails its CRC-32C"));
  bad = good;
  bad[21 + 3] ^= 1;  // the second record's length
  ASSERT_TRUE(util::WriteFileAtomically(path, bad).ok());
  EXPECT_THAT(std::string(ReadRecords(path).status().message()),
              HasSubstr("the length of the record at byte 21 fails its CRC-32C"));
}

TEST(EventWriterTest, TensorBoardReadsEveryScalarWithItsStep) {
  ASSERT_TRUE(HaveTensorBoard()) << kPython << " is missing: run tools/setup.sh";
  const std::string dir = TmpDir("tb") + "/log";  // Open creates it
  absl::StatusOr<std::unique_ptr<EventWriter>> w = EventWriter::Open(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(absl::StartsWith(fs::path((*w)->path()).filename().string(),
                               "events.out.tfevents."));
  const double t0 = 1795000000.0;
  for (int step = 0; step < 300; ++step) {
    ASSERT_TRUE((*w)->AddScalar("loss/loss", step, 4.0 - step / 128.0, t0 + step).ok());
    ASSERT_TRUE((*w)->AddScalar("opt/lr", step, 1e-3 * (step + 1), t0 + step).ok());
  }
  for (int epoch = 0; epoch < 3; ++epoch) {
    ASSERT_TRUE((*w)->AddScalar("perf/test_acc1", epoch, 50.5 + epoch, t0 + 1000).ok());
  }
  ASSERT_TRUE((*w)->Flush().ok());
  // A second writer in the same directory never takes the first one's file.
  absl::StatusOr<std::unique_ptr<EventWriter>> w2 = EventWriter::Open(dir);
  ASSERT_TRUE(w2.ok()) << w2.status();
  EXPECT_NE((*w2)->path(), (*w)->path());
  ASSERT_TRUE((*w2)->AddScalar("opt/weight_decay", 7, 0.05, t0).ok());
  w2->reset();  // the destructor flushes

  const Seen seen = ReadWithTensorBoard(dir);
  EXPECT_EQ(seen.records, 1 + 600 + 3 + 1 + 1);  // with each file's version event
  EXPECT_EQ(seen.scalar_count, 604);
  for (int step = 0; step < 300; ++step) {
    auto loss = seen.scalars.find({"loss/loss", step});
    ASSERT_NE(loss, seen.scalars.end()) << step;
    EXPECT_EQ(loss->second.first, 4.0 - step / 128.0) << step;  // exact in float32
    EXPECT_EQ(loss->second.second, t0 + step);
    auto lr = seen.scalars.find({"opt/lr", step});
    ASSERT_NE(lr, seen.scalars.end()) << step;
    EXPECT_EQ(lr->second.first, static_cast<double>(static_cast<float>(1e-3 * (step + 1))));
  }
  for (int epoch = 0; epoch < 3; ++epoch) {
    EXPECT_EQ(Value(seen, "perf/test_acc1", epoch), 50.5 + epoch);
  }
  EXPECT_EQ(Value(seen, "opt/weight_decay", 7), static_cast<double>(0.05f));
}

// A run killed mid-write and resumed from its checkpoint: the files first lose what lies
// beyond it (and the torn record), then the resumed run writes those steps again; every
// (tag, step) appears once, with the resumed run's value.
TEST(EventWriterTest, ResumeDropsEventsPastTheCheckpoint) {
  ASSERT_TRUE(HaveTensorBoard()) << kPython << " is missing: run tools/setup.sh";
  const std::string dir = TmpDir("resume");
  std::string first_path;
  {
    absl::StatusOr<std::unique_ptr<EventWriter>> w = EventWriter::Open(dir);
    ASSERT_TRUE(w.ok()) << w.status();
    first_path = (*w)->path();
    for (int step = 0; step < 10; ++step) {
      ASSERT_TRUE((*w)->AddScalar("loss/loss", step, step, 100 + step).ok());
      ASSERT_TRUE((*w)->AddScalar("opt/lr", step, 0.5, 100 + step).ok());
    }
    for (int epoch = 0; epoch < 2; ++epoch) {
      ASSERT_TRUE((*w)->AddScalar("perf/test_acc1", epoch, 10 + epoch, 200).ok());
    }
  }
  // The crash: half a record at the end.
  {
    Event e;
    e.set_step(10);
    e.mutable_summary()->add_value()->set_tag("loss/loss");
    std::ofstream(first_path, std::ios::app | std::ios::binary)
        << EncodeRecord(e.SerializeAsString()).substr(0, 9);
  }
  // Resume at iteration 6 of epoch 1: iterations >= 6 and epochs >= 1 are redone.
  absl::StatusOr<TruncateReport> report =
      TruncateEvents(dir, [](absl::string_view tag, int64_t step) {
        return absl::StartsWith(tag, "perf/") ? step < 1 : step < 6;
      });
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->files, 1);
  EXPECT_EQ(report->rewritten, 1);
  EXPECT_EQ(report->dropped, 4 + 4 + 1);
  EXPECT_EQ(report->torn_bytes, 9u);
  {
    absl::StatusOr<std::unique_ptr<EventWriter>> w = EventWriter::Open(dir);
    ASSERT_TRUE(w.ok()) << w.status();
    for (int step = 6; step < 10; ++step) {
      ASSERT_TRUE((*w)->AddScalar("loss/loss", step, 100 + step, 300 + step).ok());
      ASSERT_TRUE((*w)->AddScalar("opt/lr", step, 0.25, 300 + step).ok());
    }
    ASSERT_TRUE((*w)->AddScalar("perf/test_acc1", 1, 99, 400).ok());
  }
  const Seen seen = ReadWithTensorBoard(dir);
  std::set<std::pair<std::string, int64_t>> once;
  for (const auto& [tag, step, value] : seen.raw) {
    EXPECT_TRUE(once.insert({tag, step}).second) << tag << " step " << step << " twice";
  }
  EXPECT_EQ(seen.raw.size(), 10u + 10u + 2u);
  for (int step = 0; step < 10; ++step) {
    const double want = step < 6 ? step : 100 + step;
    EXPECT_EQ(seen.raw.count({"loss/loss", step, want}), 1u) << step;
    EXPECT_EQ(Value(seen, "loss/loss", step), want) << step;  // 0 at step 0: written too
    EXPECT_EQ(Value(seen, "opt/lr", step), step < 6 ? 0.5 : 0.25) << step;
  }
  EXPECT_EQ(Value(seen, "perf/test_acc1", 0), 10);
  EXPECT_EQ(Value(seen, "perf/test_acc1", 1), 99);

  // Nothing to drop: no file is rewritten; a missing directory is no error.
  report = TruncateEvents(dir, [](absl::string_view, int64_t) { return true; });
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->files, 2);
  EXPECT_EQ(report->rewritten, 0);
  report = TruncateEvents(dir + "/none", [](absl::string_view, int64_t) { return false; });
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->files, 0);

  // A corrupt file is an error naming it, and is left as it was.
  std::string bytes = *util::ReadFile(first_path);
  bytes[bytes.size() / 2] ^= 0x40;
  ASSERT_TRUE(util::WriteFileAtomically(first_path, bytes).ok());
  report = TruncateEvents(dir, [](absl::string_view, int64_t) { return false; });
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(std::string(report.status().message()), HasSubstr(first_path + ": "));
  EXPECT_EQ(*util::ReadFile(first_path), bytes);
}

TEST(EventWriterTest, BadDirectoryIsAnError) {
  absl::StatusOr<std::unique_ptr<EventWriter>> w = EventWriter::Open("/proc/no/such/dir");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("/proc/no/such/dir"));
}

}  // namespace
}  // namespace convnextv2::tensorboard
