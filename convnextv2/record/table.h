// The rows of one group of a metrics.h5 (/train or /eval) in memory: named, typed columns of
// equal length, as the file stores them. Readers look columns up by name, so a column a file
// lacks reads as absent (NaN) and one a reader does not know is kept with its name, type and
// values. No HDF5 and no libtorch: the launcher uses it.
//
//   record::Table t;
//   t.AddColumn("step", record::ColumnType::kInt64);
//   t.AddColumn("loss", record::ColumnType::kFloat64);
//   t.AppendRow({0, 2.3});            // values in column order
//   double loss = t.Value("loss", 0);  // NaN for a column t does not have
#ifndef CONVNEXTV2_RECORD_TABLE_H_
#define CONVNEXTV2_RECORD_TABLE_H_

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace convnextv2::record {

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
// An int64 cell without a value (a row written before its column existed): reads as NaN.
inline constexpr int64_t kAbsentInt = std::numeric_limits<int64_t>::min();

// The stored types: HDF5's H5T_STD_I64LE and H5T_IEEE_F64LE.
enum class ColumnType { kInt64, kFloat64 };
const char* ColumnTypeName(ColumnType type);  // "int64", "float64"

// Values by column name, for code without a declaration's handles (tests, tools).
using NamedValues = std::vector<std::pair<std::string, double>>;

struct Column {
  std::string name;
  ColumnType type = ColumnType::kFloat64;
  std::vector<int64_t> ints;   // kInt64
  std::vector<double> floats;  // kFloat64

  size_t size() const { return type == ColumnType::kInt64 ? ints.size() : floats.size(); }
  // The value of row i as a double: NaN for an absent one.
  double Get(size_t i) const;
  // Appends a value (an int column stores a NaN as kAbsentInt).
  void Push(double value);
  void Resize(size_t rows);
};

class Table {
 public:
  const std::vector<Column>& columns() const { return columns_; }
  std::vector<Column>& mutable_columns() { return columns_; }
  size_t rows() const { return columns_.empty() ? 0 : columns_.front().size(); }
  bool empty() const { return rows() == 0; }

  // nullptr when the table has no such column.
  const Column* Find(absl::string_view name) const;
  Column* Find(absl::string_view name) {
    return const_cast<Column*>(static_cast<const Table&>(*this).Find(name));
  }
  // The column's index, adding it (absent values in the rows so far) when it is not there yet.
  size_t AddColumn(const std::string& name, ColumnType type);
  // Row `row` of column `name` as a double; NaN for an absent column or value.
  double Value(absl::string_view name, size_t row) const;
  // `step` and `epoch` of a row (both are required of every stored table).
  int64_t Step(size_t row) const { return Int("step", row); }
  int64_t Epoch(size_t row) const { return Int("epoch", row); }
  int64_t Int(absl::string_view name, size_t row) const;

  // `values` has one entry per column, in column order.
  void AppendRow(const std::vector<double>& values);
  // A row by column names (each one a column of the table: CHECKed); the others absent.
  void AppendNamed(const NamedValues& values);
  // Sets one stored value (tests, tools).
  void Set(absl::string_view name, size_t row, double value);
  // Keeps the first `rows` rows of every column.
  void Truncate(size_t rows);
  // Drops every row with step > last_step (rows are in step order).
  void DropAfterStep(int64_t last_step);

 private:
  std::vector<Column> columns_;
};

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_TABLE_H_
