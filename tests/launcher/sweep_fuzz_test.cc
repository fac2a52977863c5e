// Mutated sweep files through what `launcher sweep --dry_run` runs (RunSweep with dry_run: load,
// expand, validate every task, write the sweep dir and the script; nothing submitted). Each is
// accepted (tasks and a script written) or refused with a message naming the file, the field,
// the axis or the task; never a crash or a hang, and a refused sweep writes nothing.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "launcher/submit.h"

namespace convnextv2::launcher {
namespace {

std::string ReadRunfile(const std::string& rel) {
  const std::string path =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", rel);
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(SweepFuzzTest, MutatedSweepFilesAreWrittenOrRefusedNamingWhatIsWrong) {
  namespace fs = std::filesystem;
  const std::string root = absl::StrCat(std::getenv("TEST_TMPDIR"), "/sweep_fuzz");
  fs::remove_all(root);
  fs::create_directories(root + "/configs");
  std::ofstream(root + "/configs/finetune_default.pbtxt")
      << ReadRunfile("configs/finetune_default.pbtxt");
  std::ofstream(root + "/fake_finetune") << "#!/bin/sh\nexit 0\n";
  const std::string text = ReadRunfile("configs/ft.pbtxt");
  ASSERT_FALSE(text.empty());
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::vector<size_t> fields;  // lines that hold a "key: value" or an axis
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view l = absl::StripLeadingAsciiWhitespace(lines[i]);
    if (!l.empty() && l[0] != '#' && absl::StrContains(l, ":")) fields.push_back(i);
  }
  ASSERT_GT(fields.size(), 10u);
  const std::vector<std::string> values = {
      "\"\"", "-1", "0", "99999999999999999999", "BOGUS", "\"optim.nope=1\"",
      "\"train.epochs=abc\"", "\"train.epochs=-3\"", "nan", "1e999", "\"=\"", "\"a=b=c\"",
      "\"optim.blr\" values: \"x\"", "\"../../nonexistent.pbtxt\"", "GRID", "ZIP", "true",
      "\"99:99:99\"", "\"\\xff\""};
  const bool have_data = fs::exists("/usr/share/datasets/fashion-mnist");
  std::mt19937 rng(41);
  int tried = 0, refused = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < 240; ++k) {
    std::vector<std::string> m = lines;
    const size_t line = fields[rng() % fields.size()];
    const int op = k % 6;
    std::string key, value;
    const size_t colon = m[line].find(':');
    key = std::string(absl::StripAsciiWhitespace(m[line].substr(0, colon)));
    if (absl::StartsWith(key, "axis {")) key = "axis";
    if (op <= 2) {  // a bad value (in an axis: of its field or of its values)
      value = values[rng() % values.size()];
      const size_t end = m[line].find_first_of("#}", colon);
      m[line] = absl::StrCat(m[line].substr(0, colon + 1), " ", value,
                             end == std::string::npos ? "" : " " + m[line].substr(end));
    } else if (op == 3) {
      m[line].insert(colon, "_bogus");
    } else if (op == 4) {
      m.insert(m.begin() + line, m[line]);
    }
    std::string mutated = absl::StrJoin(m, "\n");
    if (op == 5) mutated = mutated.substr(0, rng() % mutated.size());
    const std::string file = absl::StrCat(root, "/configs/sweep_", k, ".pbtxt");
    std::ofstream(file, std::ios::trunc) << mutated;
    SweepOptions o;
    o.sweep_file = file;
    o.work_dir = root;
    o.sweep_dir = absl::StrCat(root, "/out_", k);
    o.binary = root + "/fake_finetune";
    o.dry_run = true;
    const auto c0 = std::chrono::steady_clock::now();
    absl::StatusOr<SweepResult> r = RunSweep(o);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    const std::string what =
        absl::StrCat(file, " (op ", op, " on line ", line + 1, " '", key, "' = ", value, ")");
    EXPECT_LT(seconds, 5.0) << what;
    ++tried;
    if (!r.ok()) {
      ++refused;
      const std::string e(r.status().message());
      const bool named = absl::StrContains(e, file) || absl::StrContains(e, key) ||
                         absl::StrContains(e, "axis") || absl::StrContains(e, "task_") ||
                         (!have_data && absl::StrContains(e, "fashion-mnist")) ||
                         absl::StrContains(e, "sweep_" + std::to_string(k));
      EXPECT_TRUE(named) << what << ": " << e;
      EXPECT_FALSE(fs::exists(o.sweep_dir + "/sweep_manifest.pbtxt")) << what;
      continue;
    }
    EXPECT_NE(op, 3) << what << ": an unknown field was accepted";
    EXPECT_GT(r->num_tasks, 0) << what;
    EXPECT_TRUE(absl::StrContains(r->script, "#SBATCH --array=")) << what;
    EXPECT_TRUE(fs::exists(o.sweep_dir + "/sweep_manifest.pbtxt")) << what;
  }
  std::printf("%d mutated sweep files: %d refused, %d written (%.2f s)\n", tried, refused,
              tried - refused,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

}  // namespace
}  // namespace convnextv2::launcher
