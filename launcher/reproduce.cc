#include "launcher/reproduce.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "convnextv2/config/config.h"
#include "convnextv2/record/log_txt.h"
#include "convnextv2/record/manifest.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/shell.h"
#include "convnextv2/util/status_macros.h"
#include "launcher/submit.h"

namespace convnextv2::launcher {
namespace {

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

// A column of one table that the other lacks is named once ("column only in A"), not compared
// against NaN; timing columns (record::IsTimingColumn: the declarations') are skipped.
void CompareTables(record::Group group, const record::Table& a, const record::Table& b,
                   int max_differences, std::vector<std::string>* out) {
  const char* name = record::GroupName(group);
  if (a.rows() != b.rows()) {
    out->push_back(absl::StrFormat("%s: %d rows != %d rows", name, a.rows(), b.rows()));
  }
  std::vector<std::pair<const record::Column*, const record::Column*>> both;
  for (const record::Column& c : a.columns()) {
    if (record::IsTimingColumn(group, c.name)) continue;
    const record::Column* other = b.Find(c.name);
    if (other == nullptr) {
      out->push_back(absl::StrFormat("%s column %s only in A", name, c.name));
    } else {
      both.emplace_back(&c, other);
    }
  }
  for (const record::Column& c : b.columns()) {
    if (!record::IsTimingColumn(group, c.name) && a.Find(c.name) == nullptr) {
      out->push_back(absl::StrFormat("%s column %s only in B", name, c.name));
    }
  }
  for (size_t i = 0; i < std::min(a.rows(), b.rows()); ++i) {
    for (const auto& [ca, cb] : both) {
      const double x = ca->Get(i), y = cb->Get(i);
      if (SameBits(x, y) || (std::isnan(x) && std::isnan(y))) continue;
      if (static_cast<int>(out->size()) >= max_differences) return;
      out->push_back(absl::StrFormat("%s row %d (step %d): %s %.17g != %.17g", name, i,
                                     a.Step(i), ca->name, x, y));
    }
  }
}

// The last "Epoch: [e]  [i/n]" of the log's final 64 KiB: false when there is none yet.
bool LastProgressLine(const std::string& log_path, int* epoch, int64_t* step, int64_t* steps) {
  std::ifstream in(log_path, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - (64 << 10));
  in.seekg(from);
  std::string tail(static_cast<size_t>(size - from), '\0');
  in.read(tail.data(), tail.size());
  for (size_t at = tail.rfind("Epoch: ["); at != std::string::npos;
       at = at == 0 ? std::string::npos : tail.rfind("Epoch: [", at - 1)) {
    absl::string_view rest = absl::string_view(tail).substr(at + 8);
    const size_t close = rest.find(']');
    const size_t open = rest.find('[');
    const size_t slash = rest.find('/');
    const size_t end = rest.find(']', open == absl::string_view::npos ? 0 : open);
    if (close == absl::string_view::npos || open == absl::string_view::npos ||
        slash == absl::string_view::npos || end == absl::string_view::npos || !(open < slash) ||
        !(slash < end)) {
      continue;
    }
    if (absl::SimpleAtoi(rest.substr(0, close), epoch) &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(rest.substr(open + 1, slash - open - 1)),
                         step) &&
        absl::SimpleAtoi(rest.substr(slash + 1, end - slash - 1), steps) && *steps > 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

int RunWatchingLog(const std::string& command, const std::string& log_path, int start_epoch,
                   int epochs, util::Progress* progress) {
  std::atomic<bool> done{false};
  int rc = 0;
  std::thread child([&] {
    std::string ignored;
    rc = util::RunShell(command, &ignored);
    done = true;
  });
  auto poll = [&] {
    int epoch;
    int64_t step, steps;
    if (progress != nullptr && LastProgressLine(log_path, &epoch, &step, &steps)) {
      progress->SetTotal(std::max<int64_t>(epochs - start_epoch, 1) * steps);
      progress->Update((epoch - start_epoch) * steps + step,
                       absl::StrFormat("epoch %d/%d", epoch + 1, epochs));
    }
  };
  while (!done) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    poll();
  }
  child.join();
  poll();  // where it ended, for the last line
  return rc;
}

std::vector<std::string> CompareLogs(const record::MetricsLog& a, const record::MetricsLog& b,
                                     int max_differences) {
  std::vector<std::string> differences;
  CompareTables(record::Group::kTrain, a.train, b.train, max_differences, &differences);
  CompareTables(record::Group::kEval, a.eval, b.eval, max_differences, &differences);
  return differences;
}

absl::StatusOr<ReproduceResult> Reproduce(const ReproduceOptions& options) {
  absl::StatusOr<RunManifest> manifest =
      record::ReadManifest(options.run_dir + "/manifest.pbtxt");
  CONVNEXTV2_RETURN_IF_ERROR(manifest);
  if (manifest->state() != RunManifest::FINISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.run_dir, " did not finish (state ",
                     RunManifest::State_Name(manifest->state()), "): nothing to compare with"));
  }
  // Fail before the rerun when the original log cannot be read.
  if (absl::StatusOr<record::MetricsLog> original =
          record::ReadMetricsLog(options.run_dir + "/metrics.h5");
      !original.ok()) {
    return original.status();
  }

  ReproduceResult result;
  result.out_dir = options.out_dir.empty() ? options.run_dir + ".reproduced" : options.out_dir;
  if (std::filesystem::exists(result.out_dir + "/manifest.pbtxt")) {
    return absl::AlreadyExistsError(absl::StrCat(
        result.out_dir, " already holds a run; remove it or pick another --out_dir"));
  }
  absl::StatusOr<std::string> binary = options.binary.empty()
                                           ? FindBinary(manifest->program())
                                           : absl::StatusOr<std::string>(options.binary);
  CONVNEXTV2_RETURN_IF_ERROR(binary);
  CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(result.out_dir));
  ExperimentConfig config = manifest->config();
  config.mutable_output()->set_output_dir(result.out_dir);
  const std::string config_path = result.out_dir + "/reproduce_input.pbtxt";
  CONVNEXTV2_RETURN_IF_ERROR(util::WriteFileAtomically(config_path, config::ToText(config)));
  const std::string command =
      absl::StrCat(util::ShellQuote(*binary), " --config=", util::ShellQuote(config_path), " >",
                   util::ShellQuote(result.out_dir + "/reproduce.log"), " 2>&1");
  std::optional<util::Progress> progress;
  if (options.show_progress) {
    progress.emplace(absl::StrCat("reproduce: rerun of ", options.run_dir), 0);
  }
  const int rc = RunWatchingLog(command, result.out_dir + "/reproduce.log",
                                config.train().start_epoch(), config.train().epochs(),
                                progress ? &*progress : nullptr);
  if (progress) progress->Finish();
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("the rerun exited ", rc, "; see ", result.out_dir,
                                            "/reproduce.log"));
  }
  return CompareRuns(options.run_dir, result.out_dir);
}

absl::StatusOr<ReproduceResult> CompareRuns(const std::string& run_a, const std::string& run_b) {
  absl::StatusOr<record::MetricsLog> a = record::ReadMetricsLog(run_a + "/metrics.h5");
  CONVNEXTV2_RETURN_IF_ERROR(a);
  absl::StatusOr<record::MetricsLog> b = record::ReadMetricsLog(run_b + "/metrics.h5");
  CONVNEXTV2_RETURN_IF_ERROR(b);
  ReproduceResult result;
  result.out_dir = run_b;
  result.train_rows = a->train.rows();
  result.eval_rows = a->eval.rows();
  result.differences = CompareLogs(*a, *b);
  return result;
}

absl::StatusOr<std::string> LogWithoutTiming(const std::string& path) {
  CONVNEXTV2_ASSIGN_OR_RETURN(const std::string text, util::ReadFile(path));
  absl::StatusOr<std::string> out = record::WithoutKeys(text, record::TimingLogKeys());
  if (!out.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", out.status().message()));
  return out;
}

}  // namespace convnextv2::launcher
