// The zip container of a torch.save file: its records as PyTorch's reader returns them, each
// checked against the CRC-32 and size that the zip's central directory (zip64 too) records for
// it. PyTorch's reader is built without those checks, so a flipped bit would load silently; a
// file cut short is reported as truncated. Internal to the checkpoint package (torch_zip.h is
// the API).
//
//   absl::StatusOr<std::unique_ptr<ZipRecords>> zip = ZipRecords::Open(adapter, path);
//   absl::StatusOr<Record> pickle = (*zip)->Get("data.pkl");   // names below the top folder
#ifndef CONVNEXTV2_CHECKPOINT_ZIP_RECORDS_H_
#define CONVNEXTV2_CHECKPOINT_ZIP_RECORDS_H_

#include <c10/core/Allocator.h>
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::checkpoint {

// One record's bytes.
struct Record {
  at::DataPtr data;
  size_t size = 0;
};

// Names are relative to the archive's top folder ("data.pkl", "data/0"), as
// PyTorchStreamReader takes them. Errors name `what` (the file).
class ZipRecords {
 public:
  // Reads the central directory; libtorch's reader may throw c10::Error on what it cannot open.
  static absl::StatusOr<std::unique_ptr<ZipRecords>> Open(
      std::shared_ptr<caffe2::serialize::ReadAdapterInterface> in, const std::string& what);

  bool Has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> Names() const;

  // The record, CRC-32 and size checked (DataLoss when either differs, NotFound when absent).
  absl::StatusOr<Record> Get(const std::string& name);

  // Checks the records nobody has read yet.
  absl::Status VerifyUnread();

 private:
  struct Entry {
    uint32_t crc = 0;
    uint64_t size = 0;
    bool checked = false;
  };
  // Where the central directory lies, from the end-of-central-directory record.
  struct Directory {
    uint64_t count = 0;
    uint64_t size = 0;
    uint64_t offset = 0;
  };

  explicit ZipRecords(std::string what) : what_(std::move(what)) {}

  absl::Status Corrupt(absl::string_view detail) const;
  absl::Status ReadDirectory(const caffe2::serialize::ReadAdapterInterface& in);
  absl::StatusOr<Directory> FindDirectory(const caffe2::serialize::ReadAdapterInterface& in) const;
  // Parses entry `i` of the directory at `*p` and advances `*p` past it.
  absl::Status ReadEntry(const std::string& dir, uint64_t i, size_t* p);

  std::string what_;
  std::map<std::string, Entry> entries_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
};

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_ZIP_RECORDS_H_
