// Tables for tests that build a metrics log in memory (the launcher's compare and report).
#ifndef CONVNEXTV2_TESTS_RECORD_TABLES_H_
#define CONVNEXTV2_TESTS_RECORD_TABLES_H_

#include <initializer_list>

#include "convnextv2/record/table.h"

namespace convnextv2::testing {

// A table with the int64 columns step and epoch and the float columns `floats`.
inline record::Table MakeTable(std::initializer_list<const char*> floats) {
  record::Table t;
  t.AddColumn("step", record::ColumnType::kInt64);
  t.AddColumn("epoch", record::ColumnType::kInt64);
  for (const char* f : floats) t.AddColumn(f, record::ColumnType::kFloat64);
  return t;
}

}  // namespace convnextv2::testing

#endif  // CONVNEXTV2_TESTS_RECORD_TABLES_H_
