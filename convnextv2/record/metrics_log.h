// The HDF5 metric log of a run: output_dir/metrics.h5.
//
//   absl::StatusOr<std::unique_ptr<MetricsWriter>> w =
//       MetricsWriter::Create(out_dir + "/metrics.h5", {{"seed", int64_t{0}}, {"host", "n1"}});
//   (*w)->AddTrain({.step = 0, .epoch = 0, .loss = 2.3, .lr = 1e-4});
//   (*w)->AddEval({.step = 99, .epoch = 0, .acc1 = 71.2});
//   absl::Status s = (*w)->Flush();           // before every checkpoint save, and at the end
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
//
// Crash safety: the writer keeps the whole log in memory, and Flush() builds a new HDF5 file
// image of all of it in memory (HDF5's core driver), writes it beside the old file
// (metrics.h5.tmp.PID), fsyncs it, renames it over metrics.h5 and fsyncs the directory
// (util::WriteFileAtomically). So the file under the name metrics.h5 is always one that was
// written completely: a SIGKILL (or power loss) at any instant leaves the last flushed log,
// readable by this reader, h5py and h5dump with no repair step, and a failed flush (disk full)
// leaves the previous file as it was. Every row added before a Flush() that returned OK is on
// disk; rows added since are lost with the process. A flush costs O(rows of the whole run)
// (measured in tests/record: see the README), done only when rows or attributes were added.
// Not HDF5's SWMR mode: a SWMR writer that is killed leaves a flag that plain readers (h5py's
// default, h5dump) refuse until `h5clear -s`, and SWMR cannot add attributes or shrink datasets.
// Uses the HDF5 C API; no libtorch.
#ifndef CONVNEXTV2_RECORD_METRICS_LOG_H_
#define CONVNEXTV2_RECORD_METRICS_LOG_H_

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace convnextv2::record {

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

// Everything in a metrics.h5.
struct MetricsLog {
  Attributes attributes;
  std::vector<TrainRow> train;
  std::vector<EvalRow> eval;
};

class MetricsWriter {
 public:
  // Creates `path` anew (replacing an old file of a run that is not resumed) with `attributes`,
  // and removes temporary files a killed writer left beside it.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Create(const std::string& path,
                                                               const Attributes& attributes);
  // Continues the log of a resumed run: drops every row with step > last_step (rows written
  // after the checkpoint the run resumes from, so the log ends up equal to an uninterrupted
  // run's) and sets `attributes` (replacing those of the same name). Creates the file if it
  // does not exist; refuses (naming it) a file that is not a readable log, rather than
  // replacing it.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Resume(const std::string& path,
                                                               const Attributes& attributes,
                                                               int64_t last_step);
  // Flushes what is buffered (errors are logged to stderr: a destructor cannot return them).
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void AddTrain(const TrainRow& row);
  void AddEval(const EvalRow& row);
  // Makes every row added so far durable: rewrites metrics.h5 atomically (see above) and
  // returns once it is on disk. Does nothing when nothing was added since the last flush. On an
  // error (naming the file and the reason, e.g. "No space left on device") the old file is
  // intact and the rows stay buffered for the next flush.
  absl::Status Flush();
  // Sets root attributes (e.g. the end time and exit status) and flushes.
  absl::Status SetAttributes(const Attributes& attributes);
  const std::string& path() const { return path_; }
  const MetricsLog& log() const { return log_; }

 private:
  explicit MetricsWriter(std::string path) : path_(std::move(path)) {}
  std::string path_;
  MetricsLog log_;
  bool dirty_ = false;
};

// Reads a whole log; errors name the file and the dataset that is missing or malformed.
absl::StatusOr<MetricsLog> ReadMetricsLog(const std::string& path);

// Drops the rows with step > last_step from both groups (an atomic rewrite, as Flush).
absl::Status TruncateAfterStep(const std::string& path, int64_t last_step);

// The attribute as text (integers and doubles formatted), or "" when absent.
std::string AttributeText(const Attributes& attributes, const std::string& name);

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_METRICS_LOG_H_
