#include "convnextv2/record/metrics_log.h"

#include <glog/logging.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/record/hdf5_io.h"
#include "convnextv2/record/task_records.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::record {
namespace {

using hdf5::Error;
using hdf5::Handle;

constexpr hsize_t kChunkRows = 1024;
constexpr char kFormatPrefix[] = "convnextv2.metrics.v";

std::string FormatName(int version) { return absl::StrCat(kFormatPrefix, version); }

// Writes `c` as the extendable, chunked 1-D dataset c.name of `group`.
absl::Status WriteColumn(hid_t group, const std::string& group_name, const Column& c,
                         const std::string& path) {
  const std::string full = absl::StrCat("/", group_name, "/", c.name);
  const hsize_t dims[1] = {c.size()};
  const hsize_t maxdims[1] = {H5S_UNLIMITED};
  Handle space(H5Screate_simple(1, dims, maxdims), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const hsize_t chunk[1] = {kChunkRows};
  if (!space.ok() || !dcpl.ok() || H5Pset_chunk(dcpl.get(), 1, chunk) < 0) {
    return Error(path, absl::StrCat("cannot set up dataset ", full));
  }
  const bool is_int = c.type == ColumnType::kInt64;
  Handle ds(H5Dcreate2(group, c.name.c_str(), is_int ? H5T_STD_I64LE : H5T_IEEE_F64LE,
                       space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  if (!ds.ok()) return Error(path, absl::StrCat("cannot create dataset ", full));
  const void* data = is_int ? static_cast<const void*>(c.ints.data())
                            : static_cast<const void*>(c.floats.data());
  if (c.size() > 0 && H5Dwrite(ds.get(), is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL,
                               H5S_ALL, H5P_DEFAULT, data) < 0) {
    return Error(path, absl::StrCat("cannot write ", full));
  }
  return absl::OkStatus();
}

absl::Status WriteGroup(hid_t file, const char* group_name, const Table& table,
                        const std::string& path) {
  Handle g(H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return Error(path, absl::StrCat("cannot create group /", group_name));
  for (const Column& c : table.columns()) {
    CONVNEXTV2_RETURN_IF_ERROR(WriteColumn(g.get(), group_name, c, path));
    util::FaultPoint("hdf5_write");
  }
  return absl::OkStatus();
}

// The stored type of a dataset as one of ours, checked against what the declarations say.
absl::StatusOr<ColumnType> StoredType(hid_t ds, Group group, const std::string& name,
                                      const std::string& path) {
  const std::string full = absl::StrCat("/", GroupName(group), "/", name);
  Handle type(H5Dget_type(ds), H5Tclose);
  const H5T_class_t cls = type.ok() ? H5Tget_class(type.get()) : H5T_NO_CLASS;
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    return Error(path, absl::StrCat("dataset ", full, " is neither integer nor float"));
  }
  const ColumnType stored = cls == H5T_INTEGER ? ColumnType::kInt64 : ColumnType::kFloat64;
  const bool key = name == "step" || name == "epoch";
  const std::optional<ColumnType> want =
      key ? std::optional<ColumnType>(ColumnType::kInt64) : DeclaredType(group, name);
  const bool wide_int = cls != H5T_INTEGER ||
                        (H5Tget_size(type.get()) == 8 && H5Tget_sign(type.get()) == H5T_SGN_2);
  if ((want && *want != stored) || (want == ColumnType::kInt64 && !wide_int)) {
    return Error(path, absl::StrCat("dataset ", full, " is stored as ",
                                    cls == H5T_INTEGER ? "int" : "float",
                                    H5Tget_size(type.get()) * 8,
                                    H5Tget_sign(type.get()) == H5T_SGN_NONE ? " (unsigned)" : "",
                                    ", not ", ColumnTypeName(want.value_or(stored))));
  }
  return stored;
}

absl::StatusOr<Column> ReadColumn(hid_t group_id, Group group, const std::string& name,
                                  const std::string& path) {
  const std::string full = absl::StrCat("/", GroupName(group), "/", name);
  Handle ds(H5Dopen2(group_id, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return Error(path, absl::StrCat("dataset ", full, " cannot be opened"));
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  hsize_t dims[1] = {0};
  if (!space.ok() || H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0) {
    return Error(path, absl::StrCat("dataset ", full, " is not one-dimensional"));
  }
  Column c;
  c.name = name;
  CONVNEXTV2_ASSIGN_OR_RETURN(c.type, StoredType(ds.get(), group, name, path));
  c.Resize(dims[0]);
  const bool is_int = c.type == ColumnType::kInt64;
  void* data = is_int ? static_cast<void*>(c.ints.data()) : static_cast<void*>(c.floats.data());
  if (dims[0] > 0 && H5Dread(ds.get(), is_int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL,
                             H5S_ALL, H5P_DEFAULT, data) < 0) {
    return Error(path, absl::StrCat("cannot read ", full));
  }
  return c;
}

herr_t CollectName(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

// Every dataset of the group, by name; step and epoch first, both required.
absl::StatusOr<Table> ReadGroup(hid_t file, Group group, const std::string& path) {
  const char* group_name = GroupName(group);
  Handle g(H5Gopen2(file, group_name, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return Error(path, absl::StrCat("group /", group_name, " is missing"));
  std::vector<std::string> names;
  hsize_t index = 0;
  if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &index, CollectName, &names) < 0) {
    return Error(path, absl::StrCat("cannot list /", group_name));
  }
  for (const char* key : {"epoch", "step"}) {
    auto it = std::find(names.begin(), names.end(), key);
    if (it == names.end()) {
      return Error(path, absl::StrCat("dataset /", group_name, "/", key, " is missing"));
    }
    names.erase(it);
    names.insert(names.begin(), key);
  }
  Table table;
  for (const std::string& name : names) {
    CONVNEXTV2_ASSIGN_OR_RETURN(Column c, ReadColumn(g.get(), group, name, path));
    if (!table.columns().empty() && c.size() != table.rows()) {
      return Error(path, absl::StrFormat("/%s/%s has %d rows, /%s/step has %d", group_name, name,
                                         c.size(), group_name, table.rows()));
    }
    table.mutable_columns().push_back(std::move(c));
  }
  return table;
}

// The version N of "convnextv2.metrics.vN".
absl::StatusOr<int> FormatVersion(const Attributes& attributes, const std::string& path) {
  const std::string format = AttributeText(attributes, "format");
  int version = 0;
  if (!absl::StartsWith(format, kFormatPrefix) ||
      !absl::SimpleAtoi(format.substr(sizeof(kFormatPrefix) - 1), &version) || version < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": format attribute is '", format, "', not ", kFormatPrefix,
        "<N>: not a convnextv2 metrics log"));
  }
  return version;
}

// The bytes of an HDF5 file holding `log`, built in memory (HDF5's core driver without a
// backing store): HDF5 never writes to the disk itself, so a full disk cannot leave it with a
// half-closed file, and the one write of the finished image can be made atomic.
absl::StatusOr<std::string> SnapshotImage(const std::string& path, const MetricsLog& log) {
  hdf5::QuietHdf5();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.ok() || H5Pset_fapl_core(fapl.get(), size_t{1} << 20, /*backing_store=*/0) < 0) {
    return Error(path, "cannot set up HDF5's in-memory driver");
  }
  Handle file(H5Fcreate(absl::StrCat(path, ".image").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT,
                        fapl.get()),
              H5Fclose);
  if (!file.ok()) return Error(path, "cannot create the HDF5 image in memory");
  absl::Status s = hdf5::WriteAttributes(file.get(), log.attributes, path);
  if (s.ok()) s = WriteGroup(file.get(), "train", log.train, path);
  if (s.ok()) s = WriteGroup(file.get(), "eval", log.eval, path);
  CONVNEXTV2_RETURN_IF_ERROR(s);
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) return Error(path, "cannot flush the image");
  const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
  if (size <= 0) return Error(path, "cannot size the HDF5 image");
  std::string image(static_cast<size_t>(size), '\0');
  if (H5Fget_file_image(file.get(), image.data(), image.size()) != size) {
    return Error(path, "cannot copy the HDF5 image");
  }
  return image;
}

// Writes `log` to `path` atomically: the image goes to `path`.tmp.PID, which is fsynced and
// renamed over `path`, and the directory is fsynced (util::WriteFileAtomically). A kill at any
// instant leaves `path` either as it was or complete with every row of `log` (on the disk, not
// only in the page cache, once this returns OK); a failed write leaves it as it was.
absl::Status WriteSnapshot(const std::string& path, const MetricsLog& log) {
  absl::StatusOr<std::string> image = SnapshotImage(path, log);
  CONVNEXTV2_RETURN_IF_ERROR(image);
  util::FaultPoint("hdf5_write");
  return util::WriteFileAtomically(path, *image);
}

// Resume and truncation rewrite a file: never one of a format this binary does not know.
absl::Status CheckRewritable(const MetricsLog& log, const std::string& path) {
  if (log.format_version <= kFormatVersion) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      path, " is of format ", FormatName(log.format_version), ", newer than this binary's ",
      FormatName(kFormatVersion), ": it can be compared and reported but not resumed or "
      "truncated here; use the newer binary"));
}

void DropAfterStep(int64_t last_step, MetricsLog* log) {
  log->train.DropAfterStep(last_step);
  log->eval.DropAfterStep(last_step);
}

}  // namespace

MetricsWriter::MetricsWriter(std::string path, const Declaration& declaration)
    : path_(std::move(path)) {
  for (Group g : {Group::kTrain, Group::kEval}) {
    Table& t = g == Group::kTrain ? log_.train : log_.eval;
    for (const ColumnSpec& s : declaration.columns(g)) t.AddColumn(s.name, s.type);
  }
}

void MetricsWriter::Map(const Declaration& declaration) {
  for (Group g : {Group::kTrain, Group::kEval}) {
    Table& t = g == Group::kTrain ? log_.train : log_.eval;
    std::vector<size_t>& map = g == Group::kTrain ? train_map_ : eval_map_;
    map.clear();
    for (const ColumnSpec& s : declaration.columns(g)) map.push_back(t.AddColumn(s.name, s.type));
  }
}

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Create(
    const std::string& path, const Attributes& attributes, const Declaration& declaration) {
  auto writer = std::unique_ptr<MetricsWriter>(new MetricsWriter(path, declaration));
  writer->Map(declaration);
  writer->log_.attributes = attributes;
  writer->log_.attributes["format"] = FormatName(kFormatVersion);
  writer->dirty_ = true;
  if (absl::Status s = writer->Flush(); !s.ok()) return s;
  return writer;
}

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Resume(
    const std::string& path, const Attributes& attributes, int64_t last_step,
    const Declaration& declaration) {
  if (!std::filesystem::exists(path)) return Create(path, attributes, declaration);
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  if (log.ok()) {
    if (absl::Status s = CheckRewritable(*log, path); !s.ok()) log = s;
  }
  if (!log.ok()) {
    return absl::Status(log.status().code(),
                        absl::StrCat(log.status().message(),
                                     "; move it aside to start a new log for the resumed run"));
  }
  auto writer = std::unique_ptr<MetricsWriter>(new MetricsWriter(path, Declaration()));
  writer->log_ = std::move(*log);
  DropAfterStep(last_step, &writer->log_);
  writer->Map(declaration);  // the file's columns first, then the declared ones it lacks
  for (const auto& [name, value] : attributes) writer->log_.attributes[name] = value;
  writer->log_.attributes["format"] = FormatName(kFormatVersion);
  writer->log_.format_version = kFormatVersion;
  writer->dirty_ = true;
  if (absl::Status s = writer->Flush(); !s.ok()) return s;
  return writer;
}

MetricsWriter::~MetricsWriter() {
  if (absl::Status s = Flush(); !s.ok()) {
    std::fprintf(stderr, "metrics: %s\n", std::string(s.message()).c_str());
  }
}

void MetricsWriter::Add(Group group, const std::vector<double>& declared) {
  Table& t = group == Group::kTrain ? log_.train : log_.eval;
  const std::vector<size_t>& map = group == Group::kTrain ? train_map_ : eval_map_;
  CHECK_EQ(declared.size(), map.size()) << "a row of another declaration";
  std::vector<double> values(t.columns().size(), kMissing);
  for (size_t i = 0; i < map.size(); ++i) values[map[i]] = declared[i];
  t.AppendRow(values);
  dirty_ = true;
}

void MetricsWriter::AddTrain(const NamedValues& values) {
  log_.train.AppendNamed(values);
  dirty_ = true;
}

void MetricsWriter::AddEval(const NamedValues& values) {
  log_.eval.AppendNamed(values);
  dirty_ = true;
}

void MetricsWriter::AddTrain(const TrainRow& row) { Add(Group::kTrain, row.values()); }
void MetricsWriter::AddEval(const EvalRow& row) { Add(Group::kEval, row.values()); }

absl::Status MetricsWriter::Flush() {
  if (!dirty_) return absl::OkStatus();
  if (absl::Status s = WriteSnapshot(path_, log_); !s.ok()) return s;
  dirty_ = false;
  return absl::OkStatus();
}

absl::Status MetricsWriter::SetAttributes(const Attributes& attributes) {
  for (const auto& [name, value] : attributes) log_.attributes[name] = value;
  dirty_ = true;
  return Flush();
}

absl::StatusOr<MetricsLog> ReadMetricsLog(const std::string& path) {
  absl::StatusOr<Handle> f = hdf5::OpenFile(path, H5F_ACC_RDONLY);
  CONVNEXTV2_RETURN_IF_ERROR(f);
  MetricsLog log;
  if (!hdf5::ReadAttributes(f->get(), path, &log.attributes).ok()) {
    return Error(path, "cannot read the root attributes");
  }
  CONVNEXTV2_ASSIGN_OR_RETURN(log.format_version, FormatVersion(log.attributes, path));
  CONVNEXTV2_ASSIGN_OR_RETURN(log.train, ReadGroup(f->get(), Group::kTrain, path));
  CONVNEXTV2_ASSIGN_OR_RETURN(log.eval, ReadGroup(f->get(), Group::kEval, path));
  return log;
}

absl::Status TruncateAfterStep(const std::string& path, int64_t last_step) {
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  CONVNEXTV2_RETURN_IF_ERROR(log);
  CONVNEXTV2_RETURN_IF_ERROR(CheckRewritable(*log, path));
  DropAfterStep(last_step, &*log);
  return WriteSnapshot(path, *log);
}

std::string AttributeText(const Attributes& attributes, const std::string& name) {
  auto it = attributes.find(name);
  if (it == attributes.end()) return "";
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return absl::StrCat(*i);
  return absl::StrFormat("%.17g", std::get<double>(it->second));
}

}  // namespace convnextv2::record
