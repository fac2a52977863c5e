#include "convnextv2/record/metrics_log.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::record {
namespace {

constexpr hsize_t kChunkRows = 1024;
constexpr char kFormat[] = "convnextv2.metrics.v1";


// Closes an HDF5 handle with the matching H5?close when it goes out of scope.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    Reset();
    id_ = std::exchange(o.id_, -1);
    close_ = o.close_;
    return *this;
  }
  ~Handle() { Reset(); }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  void Reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = -1;
  }
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// HDF5 prints an error stack to stderr on every failed call; errors here become absl::Status.
void QuietHdf5() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

template <typename Row>
struct ColumnSet {
  std::vector<std::pair<std::string, int64_t Row::*>> ints;
  std::vector<std::pair<std::string, double Row::*>> doubles;
  std::vector<std::string> names;
};

const ColumnSet<TrainRow>& TrainSet() {
  static const auto* set = [] {
    auto* s = new ColumnSet<TrainRow>;
    s->ints = {{"step", &TrainRow::step}, {"epoch", &TrainRow::epoch}};
    s->doubles = {{"loss", &TrainRow::loss},
                  {"lr", &TrainRow::lr},
                  {"min_lr", &TrainRow::min_lr},
                  {"weight_decay", &TrainRow::weight_decay},
                  {"grad_norm", &TrainRow::grad_norm},
                  {"class_acc", &TrainRow::class_acc},
                  {"images_per_second", &TrainRow::images_per_second},
                  {"wall_time", &TrainRow::wall_time}};
    for (const auto& c : s->ints) s->names.push_back(c.first);
    for (const auto& c : s->doubles) s->names.push_back(c.first);
    return s;
  }();
  return *set;
}

const ColumnSet<EvalRow>& EvalSet() {
  static const auto* set = [] {
    auto* s = new ColumnSet<EvalRow>;
    s->ints = {{"step", &EvalRow::step}, {"epoch", &EvalRow::epoch}};
    s->doubles = {{"acc1", &EvalRow::acc1},         {"acc5", &EvalRow::acc5},
                  {"loss", &EvalRow::loss},         {"ema_acc1", &EvalRow::ema_acc1},
                  {"ema_acc5", &EvalRow::ema_acc5}, {"ema_loss", &EvalRow::ema_loss},
                  {"wall_time", &EvalRow::wall_time}};
    for (const auto& c : s->ints) s->names.push_back(c.first);
    for (const auto& c : s->doubles) s->names.push_back(c.first);
    return s;
  }();
  return *set;
}

absl::Status Error(const std::string& path, absl::string_view what) {
  return absl::InternalError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<Handle> OpenFile(const std::string& path, unsigned flags) {
  QuietHdf5();
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such metrics file"));
  }
  Handle f(H5Fopen(path.c_str(), flags, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": cannot be opened as an HDF5 file (corrupt or not HDF5)"));
  }
  return f;
}

// Writes `values` as the extendable, chunked 1-D dataset `name` of `group`.
template <typename T>
absl::Status WriteColumn(hid_t group, const std::string& group_name, const std::string& name,
                         const std::vector<T>& values, const std::string& path) {
  const std::string full = absl::StrCat("/", group_name, "/", name);
  const hsize_t dims[1] = {values.size()};
  const hsize_t maxdims[1] = {H5S_UNLIMITED};
  Handle space(H5Screate_simple(1, dims, maxdims), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const hsize_t chunk[1] = {kChunkRows};
  if (!space.ok() || !dcpl.ok() || H5Pset_chunk(dcpl.get(), 1, chunk) < 0) {
    return Error(path, absl::StrCat("cannot set up dataset ", full));
  }
  constexpr bool kInt = std::is_same_v<T, int64_t>;
  Handle ds(H5Dcreate2(group, name.c_str(), kInt ? H5T_STD_I64LE : H5T_IEEE_F64LE, space.get(),
                       H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
            H5Dclose);
  if (!ds.ok()) return Error(path, absl::StrCat("cannot create dataset ", full));
  if (!values.empty() &&
      H5Dwrite(ds.get(), kInt ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
               H5P_DEFAULT, values.data()) < 0) {
    return Error(path, absl::StrCat("cannot write ", full));
  }
  return absl::OkStatus();
}

template <typename Row>
absl::Status WriteGroup(hid_t file, const char* group_name, const ColumnSet<Row>& set,
                        const std::vector<Row>& rows, const std::string& path) {
  Handle g(H5Gcreate2(file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) return Error(path, absl::StrCat("cannot create group /", group_name));
  for (const auto& [name, member] : set.ints) {
    std::vector<int64_t> v;
    v.reserve(rows.size());
    for (const Row& r : rows) v.push_back(r.*member);
    if (absl::Status s = WriteColumn(g.get(), group_name, name, v, path); !s.ok()) return s;
    util::FaultPoint("hdf5_write");
  }
  for (const auto& [name, member] : set.doubles) {
    std::vector<double> v;
    v.reserve(rows.size());
    for (const Row& r : rows) v.push_back(r.*member);
    if (absl::Status s = WriteColumn(g.get(), group_name, name, v, path); !s.ok()) return s;
    util::FaultPoint("hdf5_write");
  }
  return absl::OkStatus();
}

absl::StatusOr<Handle> OpenColumn(hid_t file, const std::string& full_name,
                                  const std::string& path) {
  Handle ds(H5Dopen2(file, full_name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) return Error(path, absl::StrCat("dataset /", full_name, " is missing"));
  return ds;
}

absl::StatusOr<hsize_t> Length(hid_t ds, const std::string& full_name, const std::string& path) {
  Handle space(H5Dget_space(ds), H5Sclose);
  hsize_t dims[1] = {0};
  if (!space.ok() || H5Sget_simple_extent_ndims(space.get()) != 1 ||
      H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0) {
    return Error(path, absl::StrCat("dataset /", full_name, " is not one-dimensional"));
  }
  return dims[0];
}

template <typename T>
absl::StatusOr<std::vector<T>> ReadColumn(hid_t file, const std::string& full_name,
                                          const std::string& path) {
  absl::StatusOr<Handle> ds = OpenColumn(file, full_name, path);
  CONVNEXTV2_RETURN_IF_ERROR(ds);
  absl::StatusOr<hsize_t> n = Length(ds->get(), full_name, path);
  CONVNEXTV2_RETURN_IF_ERROR(n);
  std::vector<T> values(*n);
  if (*n == 0) return values;
  const hid_t mem_type = std::is_same_v<T, int64_t> ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
  if (H5Dread(ds->get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    return Error(path, absl::StrCat("cannot read /", full_name));
  }
  return values;
}

template <typename Row>
absl::StatusOr<std::vector<Row>> ReadRows(hid_t file, const std::string& group,
                                          const ColumnSet<Row>& set, const std::string& path) {
  std::vector<Row> rows;
  bool first = true;
  auto fit = [&](size_t n, const std::string& name) -> absl::Status {
    if (first) {
      rows.resize(n);
      first = false;
    } else if (n != rows.size()) {
      return Error(path, absl::StrFormat("/%s/%s has %d rows, /%s/%s has %d", group, name, n,
                                         group, set.names[0], rows.size()));
    }
    return absl::OkStatus();
  };
  for (const auto& [name, member] : set.ints) {
    absl::StatusOr<std::vector<int64_t>> v = ReadColumn<int64_t>(file, group + "/" + name, path);
    CONVNEXTV2_RETURN_IF_ERROR(v);
    if (absl::Status s = fit(v->size(), name); !s.ok()) return s;
    for (size_t i = 0; i < v->size(); ++i) rows[i].*member = (*v)[i];
  }
  for (const auto& [name, member] : set.doubles) {
    absl::StatusOr<std::vector<double>> v = ReadColumn<double>(file, group + "/" + name, path);
    CONVNEXTV2_RETURN_IF_ERROR(v);
    if (absl::Status s = fit(v->size(), name); !s.ok()) return s;
    for (size_t i = 0; i < v->size(); ++i) rows[i].*member = (*v)[i];
  }
  return rows;
}

absl::Status WriteAttributes(hid_t file, const Attributes& attributes, const std::string& path) {
  for (const auto& [name, value] : attributes) {
    if (H5Aexists(file, name.c_str()) > 0 && H5Adelete(file, name.c_str()) < 0) {
      return Error(path, absl::StrCat("cannot replace attribute ", name));
    }
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    herr_t written = -1;
    if (const auto* s = std::get_if<std::string>(&value)) {
      Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(type.get(), H5T_VARIABLE);
      H5Tset_cset(type.get(), H5T_CSET_UTF8);
      Handle attr(H5Acreate2(file, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                  H5Aclose);
      const char* data = s->c_str();
      if (attr.ok()) written = H5Awrite(attr.get(), type.get(), &data);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      Handle attr(H5Acreate2(file, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Aclose);
      if (attr.ok()) written = H5Awrite(attr.get(), H5T_NATIVE_INT64, i);
    } else {
      const double d = std::get<double>(value);
      Handle attr(H5Acreate2(file, name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT),
                  H5Aclose);
      if (attr.ok()) written = H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &d);
    }
    if (written < 0) return Error(path, absl::StrCat("cannot write attribute ", name));
  }
  return absl::OkStatus();
}

struct AttrReadState {
  Attributes* out;
  bool failed = false;
};

herr_t ReadOneAttribute(hid_t location, const char* name, const H5A_info_t*, void* data) {
  auto* state = static_cast<AttrReadState*>(data);
  Handle attr(H5Aopen(location, name, H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (!attr.ok() || !type.ok()) {
    state->failed = true;
    return -1;
  }
  switch (H5Tget_class(type.get())) {
    case H5T_STRING: {
      Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_cset(mem.get(), H5Tget_cset(type.get()));  // HDF5 does not convert ASCII<->UTF-8
      if (H5Tis_variable_str(type.get()) > 0) {
        H5Tset_size(mem.get(), H5T_VARIABLE);
        char* text = nullptr;
        if (H5Aread(attr.get(), mem.get(), &text) < 0) break;
        (*state->out)[name] = std::string(text ? text : "");
        H5free_memory(text);
      } else {  // fixed length, as other writers (h5py's np.bytes_) make them
        const size_t n = H5Tget_size(type.get());
        H5Tset_size(mem.get(), n + 1);
        std::string text(n + 1, '\0');
        if (H5Aread(attr.get(), mem.get(), text.data()) < 0) break;
        text.resize(std::char_traits<char>::length(text.c_str()));
        (*state->out)[name] = text;
      }
      return 0;
    }
    case H5T_INTEGER: {
      int64_t v = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0) break;
      (*state->out)[name] = v;
      return 0;
    }
    case H5T_FLOAT: {
      double v = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0) break;
      (*state->out)[name] = v;
      return 0;
    }
    default:
      return 0;  // not ours: ignored
  }
  state->failed = true;
  return -1;
}

}  // namespace

const std::vector<std::string>& TrainColumns() { return TrainSet().names; }
const std::vector<std::string>& EvalColumns() { return EvalSet().names; }

namespace {

template <typename Row>
double ColumnValue(const ColumnSet<Row>& set, const Row& row, const std::string& name) {
  for (const auto& [n, m] : set.ints) {
    if (n == name) return static_cast<double>(row.*m);
  }
  for (const auto& [n, m] : set.doubles) {
    if (n == name) return row.*m;
  }
  return kMissing;
}

}  // namespace

double TrainValue(const TrainRow& row, const std::string& name) {
  return ColumnValue(TrainSet(), row, name);
}

double EvalValue(const EvalRow& row, const std::string& name) {
  return ColumnValue(EvalSet(), row, name);
}

namespace {

// The bytes of an HDF5 file holding `log`, built in memory (HDF5's core driver without a
// backing store): HDF5 never writes to the disk itself, so a full disk cannot leave it with a
// half-closed file, and the one write of the finished image can be made atomic.
absl::StatusOr<std::string> SnapshotImage(const std::string& path, const MetricsLog& log) {
  QuietHdf5();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.ok() || H5Pset_fapl_core(fapl.get(), size_t{1} << 20, /*backing_store=*/0) < 0) {
    return Error(path, "cannot set up HDF5's in-memory driver");
  }
  Handle file(H5Fcreate(absl::StrCat(path, ".image").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT,
                        fapl.get()),
              H5Fclose);
  if (!file.ok()) return Error(path, "cannot create the HDF5 image in memory");
  absl::Status s = WriteAttributes(file.get(), log.attributes, path);
  if (s.ok()) s = WriteGroup(file.get(), "train", TrainSet(), log.train, path);
  if (s.ok()) s = WriteGroup(file.get(), "eval", EvalSet(), log.eval, path);
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

void DropAfterStep(int64_t last_step, MetricsLog* log) {
  // Rows are appended in step order; keep the prefix up to last_step.
  size_t keep = 0;
  while (keep < log->train.size() && log->train[keep].step <= last_step) ++keep;
  log->train.resize(keep);
  keep = 0;
  while (keep < log->eval.size() && log->eval[keep].step <= last_step) ++keep;
  log->eval.resize(keep);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Create(
    const std::string& path, const Attributes& attributes) {
  auto writer = std::unique_ptr<MetricsWriter>(new MetricsWriter(path));
  writer->log_.attributes = attributes;
  writer->log_.attributes.emplace("format", std::string(kFormat));
  writer->dirty_ = true;
  if (absl::Status s = writer->Flush(); !s.ok()) return s;
  return writer;
}

absl::StatusOr<std::unique_ptr<MetricsWriter>> MetricsWriter::Resume(
    const std::string& path, const Attributes& attributes, int64_t last_step) {
  if (!std::filesystem::exists(path)) return Create(path, attributes);
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  if (!log.ok()) {
    return absl::Status(log.status().code(),
                        absl::StrCat(log.status().message(),
                                     "; move it aside to start a new log for the resumed run"));
  }
  auto writer = std::unique_ptr<MetricsWriter>(new MetricsWriter(path));
  writer->log_ = std::move(*log);
  DropAfterStep(last_step, &writer->log_);
  for (const auto& [name, value] : attributes) writer->log_.attributes[name] = value;
  writer->dirty_ = true;
  if (absl::Status s = writer->Flush(); !s.ok()) return s;
  return writer;
}

MetricsWriter::~MetricsWriter() {
  if (absl::Status s = Flush(); !s.ok()) {
    std::fprintf(stderr, "metrics: %s\n", std::string(s.message()).c_str());
  }
}

void MetricsWriter::AddTrain(const TrainRow& row) {
  log_.train.push_back(row);
  dirty_ = true;
}

void MetricsWriter::AddEval(const EvalRow& row) {
  log_.eval.push_back(row);
  dirty_ = true;
}

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
  absl::StatusOr<Handle> f = OpenFile(path, H5F_ACC_RDONLY);
  CONVNEXTV2_RETURN_IF_ERROR(f);
  MetricsLog log;
  AttrReadState state{&log.attributes};
  hsize_t index = 0;
  if (H5Aiterate2(f->get(), H5_INDEX_NAME, H5_ITER_INC, &index, ReadOneAttribute, &state) < 0 ||
      state.failed) {
    return Error(path, "cannot read the root attributes");
  }
  absl::StatusOr<std::vector<TrainRow>> train = ReadRows(f->get(), "train", TrainSet(), path);
  CONVNEXTV2_RETURN_IF_ERROR(train);
  absl::StatusOr<std::vector<EvalRow>> eval = ReadRows(f->get(), "eval", EvalSet(), path);
  CONVNEXTV2_RETURN_IF_ERROR(eval);
  log.train = std::move(*train);
  log.eval = std::move(*eval);
  return log;
}

absl::Status TruncateAfterStep(const std::string& path, int64_t last_step) {
  absl::StatusOr<MetricsLog> log = ReadMetricsLog(path);
  CONVNEXTV2_RETURN_IF_ERROR(log);
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
