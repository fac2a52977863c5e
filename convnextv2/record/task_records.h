// The declared records of the two tasks, fine-tuning and FCMAE pre-training: the one place each
// of their columns is declared (see declaration.h). The training loop fills the columns of
// LoopColumns and EvalColumns; a task fills its own. The launcher reads the same declarations
// for what is a timing and what is charted, so no list of column names is kept anywhere else.
//
//   record::FinetuneRecord r = record::MakeFinetuneRecord({.mixup = false, .amp = true});
//   record::TrainRow row(r.declaration);
//   row.Set(r.class_acc, 0.5);
//
// `step` is the 0-based global micro-batch index (epoch * steps_per_epoch + micro-batch), in
// every file ever written, and an eval row's `step` is the last micro-batch before it;
// `optimizer_step` (format v2 on) is the 0-based optimizer step a micro-batch's gradients go
// into: epoch * (steps_per_epoch / update_freq) + micro-batch / update_freq, the count the
// weight-decay schedule follows. They differ whenever update_freq > 1.
#ifndef CONVNEXTV2_RECORD_TASK_RECORDS_H_
#define CONVNEXTV2_RECORD_TASK_RECORDS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "convnextv2/record/declaration.h"

namespace convnextv2::record {

// The /train columns the loop fills (each task declares how they show).
struct LoopColumns {
  TrainInt step, epoch, optimizer_step;
  TrainFloat loss;
  TrainFloat lr, min_lr;  // the largest group lr (the official `lr`) and the smallest
  TrainFloat weight_decay, grad_norm;  // grad_norm: at optimizer steps taken, else NaN
  TrainFloat images_per_second;        // of the recent steps; log.txt has the epoch's
  TrainFloat wall_time;                // seconds since this attempt started
};

// The /eval columns (accuracies in percent); the loop sets step, epoch and wall_time.
struct EvalColumns {
  EvalInt step, epoch;
  EvalFloat loss, acc1, acc5, ema_loss, ema_acc1, ema_acc5, wall_time;
};

struct TaskRecord {
  Declaration declaration;
  LoopColumns loop;
  EvalColumns eval;
  int images_per_second_decimals = 0;  // of the progress line's img/s
};

struct FinetuneRecordOptions {
  bool mixup = false;  // no class accuracy against mixed targets
  bool amp = false;    // the gradient norm goes to TensorBoard (official)
};
struct FinetuneRecord : TaskRecord {
  TrainFloat class_acc;  // fraction in [0, 1], as the official log
};
FinetuneRecord MakeFinetuneRecord(const FinetuneRecordOptions& options);
TaskRecord MakePretrainRecord();

// Over both tasks' declarations (the launcher's view of any run dir).
// A timing column of `group`: differs between identical runs.
bool IsTimingColumn(Group group, absl::string_view name);
// The log.txt keys of timing columns ("train_images_per_second").
std::vector<std::string> TimingLogKeys();
// The type the declarations give the column, if any declares it.
std::optional<ColumnType> DeclaredType(Group group, absl::string_view name);

struct ChartedColumn {
  Group group;
  std::string name;
  Chart chart;
};
// The report's charts, in their order.
std::vector<ChartedColumn> ChartedColumns();

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_TASK_RECORDS_H_
