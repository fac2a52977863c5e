#include "convnextv2/record/declaration.h"

#include <glog/logging.h>

namespace convnextv2::record {

const char* GroupName(Group group) { return group == Group::kTrain ? "train" : "eval"; }

int Declaration::AddSpec(Group group, ColumnSpec spec) {
  CHECK(!Find(group, spec.name)) << "column " << GroupName(group) << "/" << spec.name
                                 << " declared twice";
  CHECK(!spec.meter || group == Group::kTrain) << "meters are per step: /train only";
  if (spec.meter && spec.meter_key.empty()) spec.meter_key = spec.name;
  std::vector<ColumnSpec>& list = group == Group::kTrain ? train_ : eval_;
  list.push_back(std::move(spec));
  return static_cast<int>(list.size()) - 1;
}

const ColumnSpec* Declaration::Find(Group group, absl::string_view name) const {
  for (const ColumnSpec& s : columns(group)) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::optional<int> Declaration::IndexOf(Group group, absl::string_view name) const {
  const std::vector<ColumnSpec>& list = columns(group);
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].name == name) return static_cast<int>(i);
  }
  return std::nullopt;
}

}  // namespace convnextv2::record
