// The HDF5 metric log of a run: output_dir/metrics.h5.
//
//   record::FinetuneRecord r = record::MakeFinetuneRecord({});
//   absl::StatusOr<std::unique_ptr<MetricsWriter>> w = MetricsWriter::Create(
//       out_dir + "/metrics.h5", {{"seed", int64_t{0}}, {"host", "n1"}}, r.declaration);
//   record::TrainRow row(r.declaration);
//   row.Set(r.loop.loss, 2.3);
//   (*w)->AddTrain(row);
//   absl::Status s = (*w)->Flush();           // before every checkpoint save, and at the end
//   absl::StatusOr<MetricsLog> log = ReadMetricsLog(out_dir + "/metrics.h5");
//   double loss = log->train.Value("loss", 0);  // NaN when the file has no such column
//
// Layout (readable with h5dump and h5py): root attributes (the run's config text, its SHA-256,
// git commit, seed, host, Slurm ids, ..., and `format`), and two groups of equally long,
// extendable, chunked 1-D datasets, one per column: /train (one row per micro-batch) and /eval
// (one row per evaluation). The columns are those the task declares (task_records.h); `step`
// and `epoch` (int64) are in every group of every file, every other column is int64 or float64.
// A value a run does not have (no EMA, no gradient norm yet) is NaN. `step` is the 0-based
// global micro-batch index; an eval row carries the step of the last micro-batch before it.
//
// Formats: `format` is "convnextv2.metrics.v<N>". v1 (before 2026-12-07): train step, epoch,
// loss, lr, min_lr, weight_decay, grad_norm, class_acc, images_per_second, wall_time; eval step,
// epoch, acc1, acc5, loss, ema_acc1, ema_acc5, ema_loss, wall_time. v2 adds /train
// optimizer_step and drops columns a task never fills (pretrain's class_acc). The reader reads every version: a column missing from a file reads as NaN, one it
// does not know is kept (name, type, values) and written back by Resume and TruncateAfterStep;
// stored types are checked (int64 where declared int64, float where declared float). A file of a
// newer format than this binary writes is read (compare, report) but never rewritten: Resume
// and TruncateAfterStep refuse it. Resuming an older file rewrites it as the current format.
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
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/record/attributes.h"
#include "convnextv2/record/declaration.h"
#include "convnextv2/record/table.h"

namespace convnextv2::record {

inline constexpr int kFormatVersion = 2;  // what this binary writes

// Everything in a metrics.h5.
struct MetricsLog {
  Attributes attributes;
  int format_version = kFormatVersion;  // of the file read
  Table train;
  Table eval;
  const Table& group(Group g) const { return g == Group::kTrain ? train : eval; }
};

class MetricsWriter {
 public:
  // Creates `path` anew (replacing an old file of a run that is not resumed) with `attributes`,
  // and removes temporary files a killed writer left beside it.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Create(const std::string& path,
                                                               const Attributes& attributes,
                                                               const Declaration& declaration);
  // Continues the log of a resumed run: drops every row with step > last_step (rows written
  // after the checkpoint the run resumes from, so the log ends up equal to an uninterrupted
  // run's) and sets `attributes` (replacing those of the same name). The file's columns are
  // kept (those the declaration lacks get NaN in new rows), the declared ones it lacks are
  // added (NaN in its old rows). Creates the file if it does not exist; refuses (naming it) a
  // file that is not a readable log or is of a newer format, rather than replacing it.
  static absl::StatusOr<std::unique_ptr<MetricsWriter>> Resume(const std::string& path,
                                                               const Attributes& attributes,
                                                               int64_t last_step,
                                                               const Declaration& declaration);
  // Flushes what is buffered (errors are logged to stderr: a destructor cannot return them).
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // A row of the declaration this writer was made with.
  void AddTrain(const TrainRow& row);
  void AddEval(const EvalRow& row);
  // A row by column names (each one a column of the file; the others NaN).
  void AddTrain(const NamedValues& values);
  void AddEval(const NamedValues& values);
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
  MetricsWriter(std::string path, const Declaration& declaration);
  void Map(const Declaration& declaration);  // declared columns -> the table's
  void Add(Group group, const std::vector<double>& declared);
  std::string path_;
  MetricsLog log_;
  std::vector<size_t> train_map_, eval_map_;  // declaration index -> table column
  bool dirty_ = false;
};

// Reads a whole log, of any format version; errors name the file and the dataset that is
// missing, mistyped or malformed.
absl::StatusOr<MetricsLog> ReadMetricsLog(const std::string& path);

// Drops the rows with step > last_step from both groups (an atomic rewrite, as Flush), keeping
// every column; refuses a file of a newer format.
absl::Status TruncateAfterStep(const std::string& path, int64_t last_step);

// The attribute as text (integers and doubles formatted), or "" when absent.
std::string AttributeText(const Attributes& attributes, const std::string& name);

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_METRICS_LOG_H_
