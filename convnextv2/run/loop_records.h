// What the training loop (loop.h) writes from a task's declared record (record/
// task_records.h): the epoch's meters, the progress line's fields, the TensorBoard values of a
// step or an evaluation and the epoch's log.txt entries. Each reads the declaration only, so a
// column declared with a meter, a log key, a tag or a progress field shows there with no code.
#ifndef CONVNEXTV2_RUN_LOOP_RECORDS_H_
#define CONVNEXTV2_RUN_LOOP_RECORDS_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/dist/process_group.h"
#include "convnextv2/record/declaration.h"
#include "convnextv2/record/log_txt.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/train/meters.h"

namespace convnextv2::run {

// The epoch's running means: one per /train column the task declares a meter (its mean over
// the steps whose value is not NaN), addressed by the column's handle. A mid-epoch checkpoint
// saves each as "train.<meter_key>_sum" / "train.<meter_key>_count", so a resumed epoch
// reports the same means.
class LoopMeters {
 public:
  explicit LoopMeters(const record::Declaration& declaration);
  // Adds the row's value of every meter column (NaN: not measured at this step).
  void AddRow(const record::TrainRow& row);
  // The meter of a column declared with `meter` (CHECKed: a declaration error).
  const train::MeanMeter& at(record::TrainFloat column) const;
  train::MeanMeter& operator[](record::TrainFloat column);
  // By declaration index; nullptr for a column without a meter.
  const train::MeanMeter* Find(size_t index) const;
  std::map<std::string, double> Sums() const;
  void Restore(const std::map<std::string, double>& scalars);
  // The meters declared `rank_mean`, in declaration order: averaged over the ranks at the
  // epoch's end (as synchronize_between_processes).
  std::vector<train::MeanMeter*> Reduced();

 private:
  const record::Declaration& declaration_;
  std::vector<std::optional<train::MeanMeter>> meters_;  // by /train column index
};

// "lr: 0.000100  min_lr: 0.000100  loss: 0.6931 (0.6931)  ...  img/s: 812" of one step: the
// declared progress fields in their order.
std::string ProgressFields(const record::Declaration& declaration, const record::TrainRow& row,
                           const LoopMeters& meters);

// The declared TensorBoard values (tag, value) of a step; `boundary`: it ends an accumulation
// group. Columns declared rank_mean are averaged over `comm`'s ranks (every rank must call this
// for every step when TensorBoard is on).
using Scalars = std::vector<std::pair<std::string, double>>;
absl::StatusOr<Scalars> StepScalars(const record::Declaration& declaration,
                                    const record::TrainRow& row, bool boundary,
                                    dist::Communicator* comm, int world_size);
// The declared TensorBoard values of an evaluation.
Scalars EvalScalars(const record::Declaration& declaration, const record::EvalRow& row);

// The epoch's log.txt entries before "epoch": each /train column with a log key (its meter's
// mean; images_per_second: the epoch's figure), then those of the eval row, if any. Optional
// columns are left out when their meter saw no value, eval columns when NaN.
std::vector<record::LogEntry> EpochLogEntries(const record::TaskRecord& record,
                                              const LoopMeters& meters,
                                              const std::optional<record::EvalRow>& eval,
                                              double images_per_second);

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_LOOP_RECORDS_H_
