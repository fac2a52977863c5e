// HDF5 plumbing of metrics.h5 (metrics_log.cc): handles that close themselves, quiet error
// stacks, opening a file with a clear error, and the scalar attributes of a file or dataset.
// Internal to //convnextv2/record; uses the HDF5 C API.
#ifndef CONVNEXTV2_RECORD_HDF5_IO_H_
#define CONVNEXTV2_RECORD_HDF5_IO_H_

#include <hdf5.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/record/attributes.h"

namespace convnextv2::record::hdf5 {

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
void QuietHdf5();

// "<path>: <what>" as an internal error.
absl::Status Error(const std::string& path, absl::string_view what);

// Opens an existing file: NotFound when there is none, DataLoss when it is not HDF5.
absl::StatusOr<Handle> OpenFile(const std::string& path, unsigned flags);

// Scalar attributes of `location` (a file or a dataset): strings, integers and doubles;
// attributes of other types are ignored when read.
absl::Status WriteAttributes(hid_t location, const Attributes& attributes,
                             const std::string& path);
absl::Status ReadAttributes(hid_t location, const std::string& path, Attributes* out);

}  // namespace convnextv2::record::hdf5

#endif  // CONVNEXTV2_RECORD_HDF5_IO_H_
