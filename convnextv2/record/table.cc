#include "convnextv2/record/table.h"

#include <glog/logging.h>

#include <cmath>

namespace convnextv2::record {

const char* ColumnTypeName(ColumnType type) {
  return type == ColumnType::kInt64 ? "int64" : "float64";
}

double Column::Get(size_t i) const {
  if (type == ColumnType::kFloat64) return floats[i];
  return ints[i] == kAbsentInt ? kMissing : static_cast<double>(ints[i]);
}

void Column::Push(double value) {
  if (type == ColumnType::kFloat64) {
    floats.push_back(value);
  } else {
    ints.push_back(std::isnan(value) ? kAbsentInt : static_cast<int64_t>(value));
  }
}

void Column::Resize(size_t rows) {
  if (type == ColumnType::kFloat64) {
    floats.resize(rows, kMissing);
  } else {
    ints.resize(rows, kAbsentInt);
  }
}

const Column* Table::Find(absl::string_view name) const {
  for (const Column& c : columns_) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

size_t Table::AddColumn(const std::string& name, ColumnType type) {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name == name) return i;
  }
  const size_t n = rows();
  Column c;
  c.name = name;
  c.type = type;
  c.Resize(n);
  columns_.push_back(std::move(c));
  return columns_.size() - 1;
}

double Table::Value(absl::string_view name, size_t row) const {
  const Column* c = Find(name);
  return c == nullptr || row >= c->size() ? kMissing : c->Get(row);
}

int64_t Table::Int(absl::string_view name, size_t row) const {
  const Column* c = Find(name);
  CHECK(c != nullptr && c->type == ColumnType::kInt64) << "no int64 column " << name;
  return c->ints[row];
}

void Table::AppendRow(const std::vector<double>& values) {
  CHECK_EQ(values.size(), columns_.size()) << "a row needs one value per column";
  for (size_t i = 0; i < values.size(); ++i) columns_[i].Push(values[i]);
}

void Table::AppendNamed(const NamedValues& named) {
  std::vector<double> values(columns_.size(), kMissing);
  for (const auto& [name, value] : named) {
    size_t i = 0;
    while (i < columns_.size() && columns_[i].name != name) ++i;
    CHECK_LT(i, columns_.size()) << "no column " << name;
    values[i] = value;
  }
  AppendRow(values);
}

void Table::Set(absl::string_view name, size_t row, double value) {
  Column* c = Find(name);
  CHECK(c != nullptr && row < c->size()) << "no cell " << name << "[" << row << "]";
  if (c->type == ColumnType::kFloat64) {
    c->floats[row] = value;
  } else {
    c->ints[row] = std::isnan(value) ? kAbsentInt : static_cast<int64_t>(value);
  }
}

void Table::Truncate(size_t rows) {
  for (Column& c : columns_) {
    if (c.size() > rows) c.Resize(rows);
  }
}

void Table::DropAfterStep(int64_t last_step) {
  const Column* step = Find("step");
  if (step == nullptr) return;
  size_t keep = 0;
  while (keep < step->ints.size() && step->ints[keep] <= last_step) ++keep;
  Truncate(keep);
}

}  // namespace convnextv2::record
