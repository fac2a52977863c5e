#include "convnextv2/util/progress.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace convnextv2::util {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What a Progress wrote to a temporary file (not a terminal unless `terminal`).
class Captured {
 public:
  explicit Captured(bool terminal) : file_(std::tmpfile()) {
    options.out = file_;
    options.terminal = terminal;
    options.clock = [this] { return now; };
  }
  ~Captured() { std::fclose(file_); }
  std::string Text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), file_)) > 0;) text.append(buf, n);
    return text;
  }
  Progress::Options options;
  double now = 0;

 private:
  std::FILE* file_;
};

TEST(ProgressTest, LogFilesGetWholeLinesEveryInterval) {
  Captured c(/*terminal=*/false);
  c.options.interval = 10;
  {
    Progress p("status: reading runs", 400, c.options);
    for (int done = 1; done <= 400; ++done) {
      c.now = done / 10.0;  // 40 s in all: lines at 10, 20, 30 and 40 s
      p.Update(done);
    }
    p.Finish();
  }
  const std::string text = c.Text();
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_THAT(absl::StrSplit(text, '\n', absl::SkipEmpty()),
              ElementsAre("status: reading runs 100/400 (25%), 10s, ETA 30s",
                          "status: reading runs 200/400 (50%), 20s, ETA 20s",
                          "status: reading runs 300/400 (75%), 30s, ETA 10s",
                          "status: reading runs 400/400 (100%), 40s"));  // not twice
}

TEST(ProgressTest, QuickPhasesStaySilent) {
  Captured c(/*terminal=*/false);
  {
    Progress p("report: reading runs", 3, c.options);
    for (int done = 1; done <= 3; ++done) p.Update(done);
  }  // the destructor finishes
  EXPECT_EQ(c.Text(), "");
}

TEST(ProgressTest, TerminalsGetOneLineRewrittenInPlace) {
  Captured c(/*terminal=*/true);
  Progress p("x", 0, c.options);  // unknown total: a count, no percentage
  c.now = 1;
  p.Update(5, "epoch 1/2");
  c.now = 2;
  p.Update(12);
  p.Finish("done");
  EXPECT_EQ(c.Text(), "\rx 5, 1s, epoch 1/2\rx 12, 2s          \rx 12, 2s, done\n");
}

TEST(ProgressTest, FormatsDurations) {
  EXPECT_EQ(FormatSeconds(44.6), "45s");
  EXPECT_EQ(FormatSeconds(185), "3m05s");
  EXPECT_EQ(FormatSeconds(7620), "2h07m");
}

}  // namespace
}  // namespace convnextv2::util
