// A task's declared record: every column of its metrics.h5 declared once, with everything that
// reads it: its type, how it reduces over an epoch's steps and over the ranks, whether it is a
// timing (never compared), its log.txt key and number format, its TensorBoard tag, its place in
// the progress line and the report's chart. The loop, metrics.h5, log.txt, TensorBoard, the
// progress line, `launcher compare` and `launcher report` all read the declaration, so a new
// column is one Add call plus the code that measures it. No libtorch: the launcher links it.
//
//   record::Declaration d;
//   record::TrainFloat loss = d.Add(record::Group::kTrain,
//       {.name = "loss", .meter = true, .rank_mean = true, .log_key = "train_loss"});
//   record::TrainRow row(d);
//   row.Set(loss, 0.7);                 // a typed handle: no lookup by string
#ifndef CONVNEXTV2_RECORD_DECLARATION_H_
#define CONVNEXTV2_RECORD_DECLARATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "convnextv2/record/table.h"

namespace convnextv2::record {

enum class Group { kTrain, kEval };  // /train: one row per micro-batch; /eval: per evaluation
const char* GroupName(Group group);  // "train", "eval"

// A typed handle of a declared column: the index into its group's columns.
template <typename T, Group G>
class ColumnId {
 public:
  constexpr ColumnId() = default;
  constexpr explicit ColumnId(int index) : index_(index) {}
  int index() const { return index_; }
  bool valid() const { return index_ >= 0; }
  bool operator==(const ColumnId& o) const { return index_ == o.index_; }

 private:
  int index_ = -1;
};
using TrainFloat = ColumnId<double, Group::kTrain>;
using TrainInt = ColumnId<int64_t, Group::kTrain>;
using EvalFloat = ColumnId<double, Group::kEval>;
using EvalInt = ColumnId<int64_t, Group::kEval>;

// Where a column goes in the progress line ("Epoch: [e]  [i/n]  eta: ...  <fields>  time: t"),
// fields in `position` order: kValue prints this step's value ("min_lr: 0.000100"),
// kRecentAndMean the meter's window and epoch means ("loss: 0.7 (0.8)"), kLast the meter's last
// value (0 before the first).
struct ProgressField {
  enum Kind { kNone, kValue, kRecentAndMean, kLast };
  Kind kind = kNone;
  std::string label;  // empty: the column's name
  std::string format = "%.4f";
  int position = 0;
};

// TensorBoard scalar of each step (/train; at the task's ScalarStep) or evaluation (/eval; at
// the epoch), written when the value is not NaN.
struct TensorBoardScalar {
  std::string tag;  // empty: not written
  bool optimizer_steps_only = false;  // only at the micro-batch that ends an accumulation group
  bool skip_zero = false;             // not written when 0 (official: no decayed group)
  bool rank_mean = false;             // averaged over the ranks first (every rank takes part)
};

// A chart of `launcher report` (x: step for /train, epoch for /eval), in `position` order.
struct Chart {
  enum Best { kNoBest, kHigher, kLower };  // which end the best task's star marks
  std::string title;  // empty: not charted
  std::string y_label;
  Best best = kNoBest;
  int position = 0;
};

struct ColumnSpec {
  std::string name;
  ColumnType type = ColumnType::kFloat64;
  bool timing = false;  // differs between identical runs: `launcher compare` skips it
  // A meter of the epoch (MetricLogger's global_avg of the step values that are not NaN), kept
  // in a mid-epoch checkpoint as "train.<meter_key>_sum"/"_count" (meter_key empty: the name).
  bool meter = false;
  bool rank_mean = false;  // the epoch's mean averaged over the ranks at its end
  std::string meter_key;
  // log.txt: the epoch's value (the meter's mean; for /eval the row's value) under log_key.
  std::string log_key;  // empty: not in log.txt
  std::string log_format = "%.10g";
  bool optional = false;  // left out of log.txt and the progress line when never measured
  TensorBoardScalar tensorboard;
  ProgressField progress;
  Chart chart;
};

class Declaration {
 public:
  // Columns are stored in the order they are added; names are unique within a group.
  template <typename T, Group G>
  ColumnId<T, G> Add(ColumnSpec spec) {
    spec.type = std::is_same_v<T, int64_t> ? ColumnType::kInt64 : ColumnType::kFloat64;
    return ColumnId<T, G>(AddSpec(G, std::move(spec)));
  }
  TrainFloat AddTrain(ColumnSpec spec) { return Add<double, Group::kTrain>(std::move(spec)); }
  TrainInt AddTrainInt(ColumnSpec spec) { return Add<int64_t, Group::kTrain>(std::move(spec)); }
  EvalFloat AddEval(ColumnSpec spec) { return Add<double, Group::kEval>(std::move(spec)); }
  EvalInt AddEvalInt(ColumnSpec spec) { return Add<int64_t, Group::kEval>(std::move(spec)); }

  const std::vector<ColumnSpec>& columns(Group group) const {
    return group == Group::kTrain ? train_ : eval_;
  }
  template <typename T, Group G>
  const ColumnSpec& spec(ColumnId<T, G> id) const {
    return columns(G)[id.index()];
  }
  // nullptr for a name the group does not declare (readers of files, tests).
  const ColumnSpec* Find(Group group, absl::string_view name) const;
  std::optional<int> IndexOf(Group group, absl::string_view name) const;

 private:
  int AddSpec(Group group, ColumnSpec spec);
  std::vector<ColumnSpec> train_, eval_;
};

// One row of a group, its values in declaration order (int64 values held exactly as doubles
// below 2^53), NaN until set.
template <Group G>
class Row {
 public:
  explicit Row(const Declaration& d) : values_(d.columns(G).size(), kMissing) {}
  // A handle that is not valid (a column the task does not declare) sets nothing.
  void Set(ColumnId<double, G> id, double v) {
    if (id.valid()) values_[id.index()] = v;
  }
  void Set(ColumnId<int64_t, G> id, int64_t v) {
    if (id.valid()) values_[id.index()] = static_cast<double>(v);
  }
  double Get(ColumnId<double, G> id) const { return values_[id.index()]; }
  int64_t Get(ColumnId<int64_t, G> id) const { return static_cast<int64_t>(values_[id.index()]); }
  // By declaration index (the loop's generic readers of the declaration).
  double at(size_t index) const { return values_[index]; }
  const std::vector<double>& values() const { return values_; }

 private:
  std::vector<double> values_;
};
using TrainRow = Row<Group::kTrain>;
using EvalRow = Row<Group::kEval>;

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_DECLARATION_H_
