#include "convnextv2/record/task_records.h"

#include <algorithm>

namespace convnextv2::record {
namespace {

using PF = ProgressField;

void AddKeys(TaskRecord* r) {
  r->loop.step = r->declaration.AddTrainInt({.name = "step"});
  r->loop.epoch = r->declaration.AddTrainInt({.name = "epoch"});
  r->loop.optimizer_step = r->declaration.AddTrainInt({.name = "optimizer_step"});
}

// Columns of both tasks that only metrics.h5 keeps.
void AddClockColumns(TaskRecord* r) {
  r->loop.wall_time = r->declaration.AddTrain({.name = "wall_time", .timing = true});
}

// engine_finetune.py's evaluate(): log.txt test_* keys, TensorBoard's "perf" head.
void AddEvalColumns(TaskRecord* r) {
  Declaration& d = r->declaration;
  EvalColumns& e = r->eval;
  e.step = d.AddEvalInt({.name = "step"});
  e.epoch = d.AddEvalInt({.name = "epoch"});
  auto add = [&d](const char* name, const char* key, const char* tag, Chart chart = {}) {
    return d.AddEval({.name = name, .log_key = key, .optional = true,
                      .tensorboard = {.tag = tag}, .chart = chart});
  };
  e.loss = add("loss", "test_loss", "perf/test_loss", {"eval loss", "loss", Chart::kLower, 4});
  e.acc1 = add("acc1", "test_acc1", "perf/test_acc1",
               {"eval acc@1", "acc@1 (%)", Chart::kHigher, 2});
  e.acc5 = add("acc5", "test_acc5", "perf/test_acc5",
               {"eval acc@5", "acc@5 (%)", Chart::kHigher, 3});
  e.ema_loss = add("ema_loss", "test_loss_ema", "perf/test_loss_ema");
  e.ema_acc1 = add("ema_acc1", "test_acc1_ema", "perf/test_acc1_ema");
  e.ema_acc5 = add("ema_acc5", "test_acc5_ema", "perf/test_acc5_ema");
  e.wall_time = d.AddEval({.name = "wall_time", .timing = true});
}

const Chart kLrChart{"learning rate", "lr", Chart::kNoBest, 5};
const Chart kLossChart{"train loss", "loss", Chart::kLower, 1};

}  // namespace

// engine_finetune.py: its MetricLogger meters (log.txt train_* keys, the progress line) and its
// log_writer tags, every micro-batch.
FinetuneRecord MakeFinetuneRecord(const FinetuneRecordOptions& options) {
  FinetuneRecord r;
  Declaration& d = r.declaration;
  LoopColumns& c = r.loop;
  AddKeys(&r);
  c.lr = d.AddTrain({.name = "lr", .meter = true, .log_key = "train_lr",
                     .tensorboard = {.tag = "opt/lr"},
                     .progress = {PF::kValue, "lr", "%.6f", 1}, .chart = kLrChart});
  c.loss = d.AddTrain({.name = "loss", .meter = true, .rank_mean = true,
                       .log_key = "train_loss", .tensorboard = {.tag = "loss/loss"},
                       .progress = {PF::kRecentAndMean, "loss", "%.4f", 3},
                       .chart = kLossChart});
  r.class_acc = d.AddTrain({.name = "class_acc", .meter = true, .rank_mean = true,
                            .meter_key = "acc", .log_key = "train_class_acc",
                            .optional = true, .tensorboard = {.tag = "loss/class_acc"},
                            .progress = {PF::kRecentAndMean, "class_acc", "%.4f", 4}});
  c.images_per_second = d.AddTrain({.name = "images_per_second", .timing = true,
                                    .log_key = "train_images_per_second", .log_format = "%.6g",
                                    .progress = {PF::kValue, "img/s", "%.0f", 9}});
  c.min_lr = d.AddTrain({.name = "min_lr", .meter = true, .log_key = "train_min_lr",
                         .tensorboard = {.tag = "opt/min_lr"},
                         .progress = {PF::kValue, "min_lr", "%.6f", 2}});
  c.weight_decay = d.AddTrain({.name = "weight_decay", .meter = true,
                               .log_key = "train_weight_decay",
                               .tensorboard = {.tag = "opt/weight_decay", .skip_zero = true},
                               .progress = {PF::kValue, "weight_decay", "%.4f", 5}});
  // The official script logs the gradient norm to TensorBoard only under AMP.
  TensorBoardScalar grad_norm_tb;
  if (options.amp) grad_norm_tb = {.tag = "opt/grad_norm", .optimizer_steps_only = true};
  c.grad_norm = d.AddTrain({.name = "grad_norm", .meter = true, .log_key = "train_grad_norm",
                            .tensorboard = grad_norm_tb,
                            .progress = {PF::kLast, "grad_norm", "%.4f", 6}});
  AddClockColumns(&r);
  AddEvalColumns(&r);
  return r;
}

// engine_pretrain.py: meters lr and loss; its log_writer once per optimizer step, the loss
// averaged over the ranks.
TaskRecord MakePretrainRecord() {
  TaskRecord r;
  Declaration& d = r.declaration;
  LoopColumns& c = r.loop;
  AddKeys(&r);
  c.lr = d.AddTrain({.name = "lr", .meter = true, .log_key = "train_lr",
                     .tensorboard = {.tag = "opt/lr", .optimizer_steps_only = true},
                     .progress = {PF::kValue, "lr", "%.6f", 1}, .chart = kLrChart});
  c.loss = d.AddTrain({.name = "loss", .meter = true, .rank_mean = true,
                       .log_key = "train_loss",
                       .tensorboard = {.tag = "loss/train_loss", .optimizer_steps_only = true,
                                       .rank_mean = true},
                       .progress = {PF::kRecentAndMean, "loss", "%.4f", 3},
                       .chart = kLossChart});
  c.min_lr = d.AddTrain({.name = "min_lr"});
  c.weight_decay = d.AddTrain({.name = "weight_decay"});
  c.grad_norm = d.AddTrain({.name = "grad_norm"});
  c.images_per_second = d.AddTrain({.name = "images_per_second", .timing = true,
                                    .progress = {PF::kValue, "img/s", "%.1f", 9}});
  AddClockColumns(&r);
  AddEvalColumns(&r);
  return r;
}

namespace {

const std::vector<const Declaration*>& AllDeclarations() {
  static const auto* all = [] {
    static const FinetuneRecord finetune = MakeFinetuneRecord({.mixup = false, .amp = true});
    static const TaskRecord pretrain = MakePretrainRecord();
    return new std::vector<const Declaration*>{&finetune.declaration, &pretrain.declaration};
  }();
  return *all;
}

}  // namespace

bool IsTimingColumn(Group group, absl::string_view name) {
  for (const Declaration* d : AllDeclarations()) {
    if (const ColumnSpec* s = d->Find(group, name); s != nullptr && s->timing) return true;
  }
  return false;
}

std::vector<std::string> TimingLogKeys() {
  std::vector<std::string> keys;
  for (const Declaration* d : AllDeclarations()) {
    for (Group g : {Group::kTrain, Group::kEval}) {
      for (const ColumnSpec& s : d->columns(g)) {
        if (s.timing && !s.log_key.empty() &&
            std::find(keys.begin(), keys.end(), s.log_key) == keys.end()) {
          keys.push_back(s.log_key);
        }
      }
    }
  }
  return keys;
}

std::optional<ColumnType> DeclaredType(Group group, absl::string_view name) {
  for (const Declaration* d : AllDeclarations()) {
    if (const ColumnSpec* s = d->Find(group, name)) return s->type;
  }
  return std::nullopt;
}

std::vector<ChartedColumn> ChartedColumns() {
  std::vector<ChartedColumn> out;
  for (const Declaration* d : AllDeclarations()) {
    for (Group g : {Group::kTrain, Group::kEval}) {
      for (const ColumnSpec& s : d->columns(g)) {
        if (s.chart.title.empty()) continue;
        const bool seen = std::any_of(out.begin(), out.end(), [&](const ChartedColumn& c) {
          return c.group == g && c.name == s.name;
        });
        if (!seen) out.push_back({g, s.name, s.chart});
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const ChartedColumn& a, const ChartedColumn& b) {
    return a.chart.position < b.chart.position;
  });
  return out;
}

}  // namespace convnextv2::record
