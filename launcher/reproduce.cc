#include "launcher/reproduce.h"

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/config/config.h"
#include "convnextv2/metrics/manifest.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/shell.h"
#include "convnextv2/util/status_macros.h"
#include "launcher/submit.h"

namespace convnextv2::launcher {
namespace {

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

bool IsTiming(const std::string& column) {
  return column == "images_per_second" || column == "wall_time";
}

template <typename Row>
void CompareRows(const char* group, const std::vector<Row>& a, const std::vector<Row>& b,
                 const std::vector<std::string>& columns,
                 double (*value)(const Row&, const std::string&), int max_differences,
                 std::vector<std::string>* out) {
  if (a.size() != b.size()) {
    out->push_back(absl::StrFormat("%s: %d rows != %d rows", group, a.size(), b.size()));
  }
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    for (const std::string& c : columns) {
      if (IsTiming(c)) continue;
      const double x = value(a[i], c), y = value(b[i], c);
      if (SameBits(x, y) || (std::isnan(x) && std::isnan(y))) continue;
      if (static_cast<int>(out->size()) >= max_differences) return;
      out->push_back(absl::StrFormat("%s row %d (step %d): %s %.17g != %.17g", group, i,
                                     a[i].step, c, x, y));
    }
  }
}

}  // namespace

std::vector<std::string> CompareLogs(const metrics::MetricsLog& a, const metrics::MetricsLog& b,
                                     int max_differences) {
  std::vector<std::string> differences;
  CompareRows("train", a.train, b.train, metrics::TrainColumns(), &metrics::TrainValue,
              max_differences, &differences);
  CompareRows("eval", a.eval, b.eval, metrics::EvalColumns(), &metrics::EvalValue,
              max_differences, &differences);
  return differences;
}

absl::StatusOr<ReproduceResult> Reproduce(const ReproduceOptions& options) {
  absl::StatusOr<RunManifest> manifest =
      metrics::ReadManifest(options.run_dir + "/manifest.pbtxt");
  CONVNEXTV2_RETURN_IF_ERROR(manifest);
  if (manifest->state() != RunManifest::FINISHED) {
    return absl::FailedPreconditionError(
        absl::StrCat(options.run_dir, " did not finish (state ",
                     RunManifest::State_Name(manifest->state()), "): nothing to compare with"));
  }
  // Fail before the rerun when the original log cannot be read.
  if (absl::StatusOr<metrics::MetricsLog> original =
          metrics::ReadMetricsLog(options.run_dir + "/metrics.h5");
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
  std::string ignored;
  if (const int rc = util::RunShell(command, &ignored); rc != 0) {
    return absl::InternalError(absl::StrCat("the rerun exited ", rc, "; see ", result.out_dir,
                                            "/reproduce.log"));
  }
  return CompareRuns(options.run_dir, result.out_dir);
}

absl::StatusOr<ReproduceResult> CompareRuns(const std::string& run_a, const std::string& run_b) {
  absl::StatusOr<metrics::MetricsLog> a = metrics::ReadMetricsLog(run_a + "/metrics.h5");
  CONVNEXTV2_RETURN_IF_ERROR(a);
  absl::StatusOr<metrics::MetricsLog> b = metrics::ReadMetricsLog(run_b + "/metrics.h5");
  CONVNEXTV2_RETURN_IF_ERROR(b);
  ReproduceResult result;
  result.out_dir = run_b;
  result.train_rows = a->train.size();
  result.eval_rows = a->eval.size();
  result.differences = CompareLogs(*a, *b);
  return result;
}

}  // namespace convnextv2::launcher
