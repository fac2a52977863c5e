#include "convnextv2/run/loop_records.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::run {

using record::ColumnSpec;
using record::Group;

LoopMeters::LoopMeters(const record::Declaration& declaration) : declaration_(declaration) {
  for (const ColumnSpec& s : declaration.columns(Group::kTrain)) {
    meters_.push_back(s.meter ? std::optional<train::MeanMeter>(train::MeanMeter())
                              : std::nullopt);
  }
}

void LoopMeters::AddRow(const record::TrainRow& row) {
  for (size_t i = 0; i < meters_.size(); ++i) {
    if (meters_[i] && !std::isnan(row.at(i))) meters_[i]->Add(row.at(i));
  }
}

const train::MeanMeter& LoopMeters::at(record::TrainFloat column) const {
  const train::MeanMeter* m = column.valid() ? Find(column.index()) : nullptr;
  CHECK(m != nullptr) << "column "
                      << (column.valid() ? declaration_.spec(column).name : "(undeclared)")
                      << " is not declared with a meter";
  return *m;
}

train::MeanMeter& LoopMeters::operator[](record::TrainFloat column) {
  return const_cast<train::MeanMeter&>(static_cast<const LoopMeters&>(*this).at(column));
}

const train::MeanMeter* LoopMeters::Find(size_t index) const {
  return index < meters_.size() && meters_[index] ? &*meters_[index] : nullptr;
}

std::map<std::string, double> LoopMeters::Sums() const {
  std::map<std::string, double> sums;
  const auto& specs = declaration_.columns(Group::kTrain);
  for (size_t i = 0; i < meters_.size(); ++i) {
    if (!meters_[i]) continue;
    sums[absl::StrCat("train.", specs[i].meter_key, "_sum")] = meters_[i]->sum();
    sums[absl::StrCat("train.", specs[i].meter_key, "_count")] = meters_[i]->count();
  }
  return sums;
}

void LoopMeters::Restore(const std::map<std::string, double>& scalars) {
  auto get = [&scalars](const std::string& key) {
    auto it = scalars.find(key);
    return it == scalars.end() ? 0.0 : it->second;
  };
  const auto& specs = declaration_.columns(Group::kTrain);
  for (size_t i = 0; i < meters_.size(); ++i) {
    if (!meters_[i]) continue;
    meters_[i]->Restore(get(absl::StrCat("train.", specs[i].meter_key, "_sum")),
                        get(absl::StrCat("train.", specs[i].meter_key, "_count")));
  }
}

std::vector<train::MeanMeter*> LoopMeters::Reduced() {
  std::vector<train::MeanMeter*> out;
  const auto& specs = declaration_.columns(Group::kTrain);
  for (size_t i = 0; i < meters_.size(); ++i) {
    if (meters_[i] && specs[i].rank_mean) out.push_back(&*meters_[i]);
  }
  return out;
}

namespace {

std::string Format(const std::string& format, double value) {
  std::string out;
  if (!absl::FormatUntyped(&out, absl::UntypedFormatSpec(format), {absl::FormatArg(value)})) {
    out = absl::StrFormat("%g", value);
  }
  return out;
}

}  // namespace

std::string ProgressFields(const record::Declaration& declaration, const record::TrainRow& row,
                           const LoopMeters& meters) {
  const auto& specs = declaration.columns(Group::kTrain);
  std::vector<size_t> order;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].progress.kind != record::ProgressField::kNone) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&specs](size_t a, size_t b) {
    return specs[a].progress.position < specs[b].progress.position;
  });
  std::vector<std::string> fields;
  for (size_t i : order) {
    const ColumnSpec& s = specs[i];
    const record::ProgressField& p = s.progress;
    const std::string label = (p.label.empty() ? s.name : p.label) + ": ";
    const train::MeanMeter* m = meters.Find(i);
    if (p.kind == record::ProgressField::kValue) {
      if (s.optional && std::isnan(row.at(i))) continue;
      fields.push_back(label + Format(p.format, row.at(i)));
      continue;
    }
    CHECK(m != nullptr) << "progress field " << s.name << " needs a meter";
    if (s.optional && m->count() == 0) continue;
    if (p.kind == record::ProgressField::kLast) {
      fields.push_back(label + Format(p.format, m->last()));
    } else {
      fields.push_back(absl::StrCat(label, Format(p.format, m->recent()), " (",
                                    Format(p.format, m->mean()), ")"));
    }
  }
  return absl::StrJoin(fields, "  ");
}

absl::StatusOr<Scalars> StepScalars(const record::Declaration& declaration,
                                    const record::TrainRow& row, bool boundary,
                                    dist::Communicator* comm, int world_size) {
  Scalars values;
  const auto& specs = declaration.columns(Group::kTrain);
  for (size_t i = 0; i < specs.size(); ++i) {
    const record::TensorBoardScalar& tb = specs[i].tensorboard;
    if (tb.tag.empty() || (tb.optimizer_steps_only && !boundary)) continue;
    double v = row.at(i);
    if (tb.rank_mean && comm != nullptr) {  // engine_pretrain.py's all_reduce_mean
      std::vector<at::Tensor> sum{at::tensor({v}, at::kDouble)};
      CONVNEXTV2_RETURN_IF_ERROR(comm->AllReduceSum(sum));
      v = sum[0].item<double>() / world_size;
    }
    if (std::isnan(v) || (tb.skip_zero && v == 0)) continue;
    values.emplace_back(tb.tag, v);
  }
  return values;
}

Scalars EvalScalars(const record::Declaration& declaration, const record::EvalRow& row) {
  Scalars values;
  const auto& specs = declaration.columns(Group::kEval);
  for (size_t i = 0; i < specs.size(); ++i) {
    const record::TensorBoardScalar& tb = specs[i].tensorboard;
    if (tb.tag.empty() || std::isnan(row.at(i)) || (tb.skip_zero && row.at(i) == 0)) continue;
    values.emplace_back(tb.tag, row.at(i));
  }
  return values;
}

std::vector<record::LogEntry> EpochLogEntries(const record::TaskRecord& record,
                                              const LoopMeters& meters,
                                              const std::optional<record::EvalRow>& eval,
                                              double images_per_second) {
  std::vector<record::LogEntry> entries;
  const auto& train = record.declaration.columns(Group::kTrain);
  for (size_t i = 0; i < train.size(); ++i) {
    const ColumnSpec& s = train[i];
    if (s.log_key.empty()) continue;
    double v = record::kMissing;
    if (const train::MeanMeter* m = meters.Find(i)) {
      if (s.optional && m->count() == 0) continue;
      v = m->mean();
    } else if (static_cast<int>(i) == record.loop.images_per_second.index()) {
      v = images_per_second;
    }
    if (std::isnan(v)) continue;
    entries.push_back({s.log_key, v, s.log_format});
  }
  if (!eval) return entries;
  const auto& columns = record.declaration.columns(Group::kEval);
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].log_key.empty() || std::isnan(eval->at(i))) continue;
    entries.push_back({columns[i].log_key, eval->at(i), columns[i].log_format});
  }
  return entries;
}

}  // namespace convnextv2::run
