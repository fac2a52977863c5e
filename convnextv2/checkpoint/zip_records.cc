#include "convnextv2/checkpoint/zip_records.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

using caffe2::serialize::ReadAdapterInterface;

// Signatures of the zip records read here.
constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint32_t kZip64EndOfCentralDirectory = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kCentralDirectoryEntry = 0x02014b50;
constexpr size_t kEndOfCentralDirectorySize = 22;
constexpr size_t kEntrySize = 46;  // without the name, extra field and comment

uint32_t Crc32(const void* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
T Le(const std::string& bytes, size_t at) {  // the zip format is little-endian, as the hosts
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

bool ReadAt(const ReadAdapterInterface& in, uint64_t pos, size_t n, std::string* out) {
  if (pos > in.size() || in.size() - pos < n) return false;
  out->resize(n);
  return n == 0 || in.read(pos, out->data(), n, "zip directory") == n;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZipRecords>> ZipRecords::Open(
    std::shared_ptr<ReadAdapterInterface> in, const std::string& what) {
  auto zip = std::unique_ptr<ZipRecords>(new ZipRecords(what));
  if (absl::Status s = zip->ReadDirectory(*in); !s.ok()) return s;
  zip->reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::move(in));
  return zip;
}

std::vector<std::string> ZipRecords::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, e] : entries_) names.push_back(name);
  return names;
}

absl::StatusOr<Record> ZipRecords::Get(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(what_, ": the archive has no record ", name));
  }
  Record r;
  std::tie(r.data, r.size) = reader_->getRecord(name);
  if (r.size != it->second.size) {
    return Corrupt(absl::StrCat("record ", name, " holds ", r.size, " bytes, its directory "
                                "entry says ", it->second.size));
  }
  const uint32_t crc = Crc32(r.data.get(), r.size);
  if (crc != it->second.crc) {
    return Corrupt(absl::StrFormat(
        "checksum mismatch in record %s (CRC-32 %08x, the archive says %08x): the file is "
        "corrupt", name, crc, it->second.crc));
  }
  it->second.checked = true;
  return r;
}

absl::Status ZipRecords::VerifyUnread() {
  for (auto& [name, e] : entries_) {
    if (e.checked) continue;
    absl::StatusOr<Record> r = Get(name);
    CONVNEXTV2_RETURN_IF_ERROR(r);
  }
  return absl::OkStatus();
}

absl::Status ZipRecords::Corrupt(absl::string_view detail) const {
  return absl::DataLossError(absl::StrCat(what_, ": ", detail));
}

// The end-of-central-directory record (zip64 when the counts overflow).
absl::StatusOr<ZipRecords::Directory> ZipRecords::FindDirectory(
    const ReadAdapterInterface& in) const {
  const uint64_t size = in.size();
  const absl::Status truncated = Corrupt(absl::StrCat(
      "truncated or incomplete (", size, " bytes, no end-of-central-directory record)"));
  if (size < kEndOfCentralDirectorySize) return truncated;
  const size_t tail_size =
      static_cast<size_t>(std::min<uint64_t>(size, kEndOfCentralDirectorySize + 0xFFFF));
  std::string tail;
  if (!ReadAt(in, size - tail_size, tail_size, &tail)) return truncated;
  size_t at = tail_size - kEndOfCentralDirectorySize + 1;
  bool found = false;
  while (at-- > 0) {  // the record ends the file, after a comment of up to 64 KiB
    if (Le<uint32_t>(tail, at) == kEndOfCentralDirectory &&
        at + kEndOfCentralDirectorySize + Le<uint16_t>(tail, at + 20) == tail_size) {
      found = true;
      break;
    }
  }
  if (!found) return truncated;
  const uint64_t eocd = size - tail_size + at;
  Directory d;
  d.count = Le<uint16_t>(tail, at + 10);
  d.size = Le<uint32_t>(tail, at + 12);
  d.offset = Le<uint32_t>(tail, at + 16);
  uint64_t end = eocd;
  if (d.count == 0xFFFF || d.size == 0xFFFFFFFF || d.offset == 0xFFFFFFFF) {
    std::string locator, z64;
    if (eocd < 20 || !ReadAt(in, eocd - 20, 20, &locator) ||
        Le<uint32_t>(locator, 0) != kZip64Locator) {
      return Corrupt("the zip64 end-of-central-directory locator is missing");
    }
    const uint64_t z64_at = Le<uint64_t>(locator, 8);
    if (!ReadAt(in, z64_at, 56, &z64) || Le<uint32_t>(z64, 0) != kZip64EndOfCentralDirectory) {
      return Corrupt("the zip64 end-of-central-directory record is missing");
    }
    d.count = Le<uint64_t>(z64, 32);
    d.size = Le<uint64_t>(z64, 40);
    d.offset = Le<uint64_t>(z64, 48);
    end = z64_at;
  }
  if (d.offset > end || end - d.offset < d.size) {
    return Corrupt("truncated or corrupt (the central directory lies outside the file)");
  }
  return d;
}

absl::Status ZipRecords::ReadEntry(const std::string& dir, uint64_t i, size_t* p_inout) {
  const size_t p = *p_inout;
  if (dir.size() - p < kEntrySize || Le<uint32_t>(dir, p) != kCentralDirectoryEntry) {
    return Corrupt(absl::StrCat("central directory entry ", i, " is malformed"));
  }
  Entry e;
  e.crc = Le<uint32_t>(dir, p + 16);
  e.size = Le<uint32_t>(dir, p + 24);
  const size_t name_len = Le<uint16_t>(dir, p + 28);
  const size_t extra_len = Le<uint16_t>(dir, p + 30);
  const size_t comment_len = Le<uint16_t>(dir, p + 32);
  if (dir.size() - p - kEntrySize < name_len + extra_len + comment_len) {
    return Corrupt(absl::StrCat("central directory entry ", i, " is malformed"));
  }
  std::string name = dir.substr(p + kEntrySize, name_len);
  if (e.size == 0xFFFFFFFF) {  // the real size is in the zip64 extra field (id 1)
    size_t x = p + kEntrySize + name_len;
    const size_t x_end = x + extra_len;
    bool have = false;
    while (x + 4 <= x_end) {
      const uint16_t id = Le<uint16_t>(dir, x), n = Le<uint16_t>(dir, x + 2);
      if (id == 1 && n >= 8 && x + 4 + 8 <= x_end) {
        e.size = Le<uint64_t>(dir, x + 4);
        have = true;
        break;
      }
      x += 4 + n;
    }
    if (!have) return Corrupt(absl::StrCat("record ", name, " lacks its zip64 size"));
  }
  *p_inout = p + kEntrySize + name_len + extra_len + comment_len;
  const size_t slash = name.find('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  entries_[name] = e;
  return absl::OkStatus();
}

absl::Status ZipRecords::ReadDirectory(const ReadAdapterInterface& in) {
  absl::StatusOr<Directory> d = FindDirectory(in);
  CONVNEXTV2_RETURN_IF_ERROR(d);
  std::string dir;
  if (!ReadAt(in, d->offset, d->size, &dir)) {
    return Corrupt("truncated or corrupt (the central directory lies outside the file)");
  }
  size_t p = 0;
  for (uint64_t i = 0; i < d->count; ++i) {
    CONVNEXTV2_RETURN_IF_ERROR(ReadEntry(dir, i, &p));
  }
  return absl::OkStatus();
}

}  // namespace convnextv2::checkpoint
