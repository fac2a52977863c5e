// The HDF5 metric log of a run: output_dir/metrics.h5.
//
//   absl::StatusOr<std::unique_ptr<MetricsWriter>> w =
//       MetricsWriter::Create(out_dir + "/metrics.h5", {{"seed", int64_t{0}}, {"host", "n1"}});
//   (*w)->AddTrain({.step = 0, .epoch = 0, .loss = 2.3, .lr = 1e-4});
//   (*w)->AddEval({.step = 99, .epoch = 0, .acc1 = 71.2});
//   absl::Status s = (*w)->Flush();           // at least once per epoch and on a signal
//   absl::StatusOr<MetricsLog> log = ReadMetricsLog(out_dir + "/metrics.h5");
//
// Layout (readable with h5dump and h5py): root attributes (the run's config text, its SHA-256,
// git commit, seed, host, Slurm ids, ...), and two groups of equally long, extendable, chunked
// 1-D datasets, one per column:
//   /train/{step, epoch}                     int64
//   /train/{loss, lr, min_lr, weight_decay, grad_norm, class_acc, images_per_second, wall_time}
//   /eval/{step, epoch}                      int64
//   /eval/{acc1, acc5, loss, ema_acc1, ema_acc5, ema_loss, wall_time}
// A value a run does not have (no EMA, no gradient norm yet) is NaN. `step` is the 0-based
// global optimizer iteration; an eval row carries the step of the last iteration before it.
// The file is opened only inside Flush() and closed again, so between flushes it is always a
// complete HDF5 file that another process (launcher status) can read, and a crash loses at most
// the rows since the last flush. Uses the HDF5 C API; no libtorch.
#ifndef CONVNEXTV2_METRICS_METRICS_LOG_H_
#define CONVNEXTV2_METRICS_METRICS_LOG_H_

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace convnextv2::metrics {

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// One training iteration.
struct TrainRow {
  int64_t step = 0;
  int64_t epoch = 0;
  double loss = kMissing;
  double lr = kMissing;            // the largest group lr (the official `lr`)
  double min_lr = kMissing;        // the smallest group lr (layer decay makes them differ)
  double weight_decay = kMissing;
  double grad_norm = kMissing;
  double class_acc = kMissing;     // fraction in [0, 1], as the official log
  double images_per_second = kMissing;
  double wall_time = kMissing;     // seconds since the run (this attempt) started
};

// One evaluation (after an epoch). Accuracies in percent.
struct EvalRow {
  int64_t step = 0;
  int64_t epoch = 0;
  double acc1 = kMissing;
  double acc5 = kMissing;
  double loss = kMissing;
  double ema_acc1 = kMissing;
  double ema_acc5 = kMissing;
  double ema_loss = kMissing;
  double wall_time = kMissing;
};

// Root attributes: strings, integers or doubles by name.
using AttributeValue = std::variant<std::string, int64_t, double>;
using Attributes = std::map<std::string, AttributeValue>;

// Column names in file order (for readers that print tables).
const std::vector<std::string>& TrainColumns();
const std::vector<std::string>& EvalColumns();
// The value of column `name` of a row as a double; NaN for an unknown name.
double TrainValue(const TrainRow& row, const std::string& name);
double EvalValue(const EvalRow& row, const std::string& name);

class MetricsWriter {
 public:
  // Creates `path` anew (replacing an old file of a run that is not resumed) with `attributes`.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Create(const std::string& path,
                                                               const Attributes& attributes);
  // Continues the log of a resumed run: drops every row with step > last_step (rows written
  // after the checkpoint the run resumes from, so the log ends up equal to an uninterrupted
  // run's) and sets `attributes` (replacing those of the same name). Creates the file if it
  // does not exist.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Resume(const std::string& path,
                                                               const Attributes& attributes,
                                                               int64_t last_step);
  // Flushes what is buffered (errors are logged to stderr: a destructor cannot return them).
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void AddTrain(const TrainRow& row) { train_.push_back(row); }
  void AddEval(const EvalRow& row) { eval_.push_back(row); }
  // Appends the buffered rows to the file and closes it (data on disk).
  absl::Status Flush();
  // Sets root attributes now (e.g. the end time and exit status).
  absl::Status SetAttributes(const Attributes& attributes);
  const std::string& path() const { return path_; }

 private:
  explicit MetricsWriter(std::string path) : path_(std::move(path)) {}
  std::string path_;
  std::vector<TrainRow> train_;
  std::vector<EvalRow> eval_;
};

// Everything in a metrics.h5.
struct MetricsLog {
  Attributes attributes;
  std::vector<TrainRow> train;
  std::vector<EvalRow> eval;
};

// Reads a whole log; errors name the file and the dataset that is missing or malformed.
absl::StatusOr<MetricsLog> ReadMetricsLog(const std::string& path);

// Drops the rows with step > last_step from both groups.
absl::Status TruncateAfterStep(const std::string& path, int64_t last_step);

// The attribute as text (integers and doubles formatted), or "" when absent.
std::string AttributeText(const Attributes& attributes, const std::string& name);

}  // namespace convnextv2::metrics

#endif  // CONVNEXTV2_METRICS_METRICS_LOG_H_
