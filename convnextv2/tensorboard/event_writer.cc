#include "convnextv2/tensorboard/event_writer.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <isa-l/crc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "convnextv2/tensorboard/event.pb.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::tensorboard {
namespace {

constexpr char kFilePrefix[] = "events.out.tfevents.";

double Now() { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  }
  return v;
}

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

std::string Hostname() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "localhost";
  return host;
}

}  // namespace

uint32_t Crc32c(absl::string_view data) {
  // ISA-L's crc32_iscsi neither pre- nor post-inverts: start from ~0 and invert at the end.
  unsigned int crc = 0xFFFFFFFFu;
  size_t done = 0;
  while (done < data.size()) {  // it takes int lengths
    const int n = static_cast<int>(std::min<size_t>(data.size() - done, 1u << 30));
    crc = crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<char*>(data.data() + done)), n,
                      crc);
    done += n;
  }
  return ~crc;
}

uint32_t MaskedCrc32c(absl::string_view data) {
  const uint32_t crc = Crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string EncodeRecord(absl::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  PutLe(&out, data.size(), 8);
  PutLe(&out, MaskedCrc32c(out), 4);
  out.append(data.data(), data.size());
  PutLe(&out, MaskedCrc32c(data), 4);
  return out;
}

absl::StatusOr<Records> ReadRecords(const std::string& path) {
  absl::StatusOr<std::string> bytes = util::ReadFile(path);
  CONVNEXTV2_RETURN_IF_ERROR(bytes);
  Records out;
  size_t p = 0;
  while (p < bytes->size()) {
    const size_t left = bytes->size() - p;
    if (left < 12) {
      out.torn_bytes = left;
      break;
    }
    const std::string length_bytes = bytes->substr(p, 8);
    if (GetLe(*bytes, p + 8, 4) != MaskedCrc32c(length_bytes)) {
      return absl::DataLossError(absl::StrCat(
          path, ": the length of the record at byte ", p, " fails its CRC-32C (corrupt file)"));
    }
    const uint64_t n = GetLe(*bytes, p, 8);
    if (left - 12 < n || left - 12 - n < 4) {
      out.torn_bytes = left;
      break;
    }
    std::string data = bytes->substr(p + 12, n);
    if (GetLe(*bytes, p + 12 + n, 4) != MaskedCrc32c(data)) {
      return absl::DataLossError(absl::StrCat(
          path, ": the record at byte ", p, " fails its CRC-32C (corrupt file)"));
    }
    out.data.push_back(std::move(data));
    p += 16 + n;
  }
  return out;
}

EventWriter::EventWriter(std::string path, int fd, const Options& options)
    : path_(std::move(path)), fd_(fd), options_(options), last_write_(Now()) {}

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::Open(const std::string& log_dir,
                                                               const Options& options) {
  if (absl::Status s = util::MakeDirs(log_dir); !s.ok()) return s;
  static std::atomic<int> counter{0};
  const double now = Now();
  std::string path;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    path = absl::StrFormat("%s/%s%010d.%s.%d.%d%s", log_dir, kFilePrefix,
                           static_cast<int64_t>(now), Hostname(), getpid(), counter++,
                           options.filename_suffix);
    fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) return Errno("cannot create event file", path);
  }
  if (fd < 0) return Errno("cannot create event file", path);
  std::unique_ptr<EventWriter> writer(new EventWriter(path, fd, options));
  Event version;
  version.set_wall_time(now);
  version.set_file_version("brain.Event:2");
  if (absl::Status s = writer->Append(version.SerializeAsString()); !s.ok()) return s;
  if (absl::Status s = writer->Flush(); !s.ok()) return s;
  return writer;
}

EventWriter::~EventWriter() {
  if (absl::Status s = Flush(); !s.ok()) LOG(ERROR) << "TensorBoard events: " << s;
  close(fd_);
}

absl::Status EventWriter::AddScalar(absl::string_view tag, int64_t step, double value,
                                    double wall_time) {
  Event event;
  event.set_wall_time(wall_time < 0 ? Now() : wall_time);
  event.set_step(step);
  Summary::Value* v = event.mutable_summary()->add_value();
  v->set_tag(std::string(tag));
  v->set_simple_value(static_cast<float>(value));
  return Append(event.SerializeAsString());
}

absl::Status EventWriter::Append(const std::string& event_bytes) {
  CONVNEXTV2_RETURN_IF_ERROR(error_);
  buffer_ += EncodeRecord(event_bytes);
  if (buffer_.size() >= options_.max_buffered_bytes ||
      Now() - last_write_ >= options_.flush_seconds) {
    return WriteBuffer();
  }
  return absl::OkStatus();
}

absl::Status EventWriter::WriteBuffer() {
  CONVNEXTV2_RETURN_IF_ERROR(error_);
  size_t done = 0;
  while (done < buffer_.size()) {
    const ssize_t n = write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error_ = Errno("cannot write event file", path_);
      return error_;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  last_write_ = Now();
  return absl::OkStatus();
}

absl::Status EventWriter::Flush() {
  if (absl::Status s = WriteBuffer(); !s.ok()) return s;
  if (fsync(fd_) != 0) {
    error_ = Errno("cannot fsync event file", path_);
    return error_;
  }
  return absl::OkStatus();
}

absl::StatusOr<TruncateReport> TruncateEvents(
    const std::string& log_dir, const std::function<bool(absl::string_view, int64_t)>& keep) {
  TruncateReport report;
  std::error_code ec;
  if (!std::filesystem::is_directory(log_dir, ec)) return report;
  std::vector<std::string> files;
  for (std::filesystem::directory_iterator it(log_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // Temporary files of an interrupted rewrite end in .tmp.<pid>: not event files.
    if (absl::StartsWith(name, kFilePrefix) && !absl::StrContains(name, ".tmp.") &&
        it->is_regular_file(ec)) {
      files.push_back(it->path().string());
    }
  }
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot list ", log_dir, ": ", ec.message()));
  }
  for (const std::string& path : files) {
    absl::StatusOr<Records> records = ReadRecords(path);
    CONVNEXTV2_RETURN_IF_ERROR(records);
    ++report.files;
    report.torn_bytes += records->torn_bytes;
    std::string kept;
    bool changed = records->torn_bytes > 0;
    for (const std::string& data : records->data) {
      Event event;
      if (!event.ParseFromString(data)) {
        return absl::DataLossError(
            absl::StrCat(path, ": a record that is not an Event (not an event file?)"));
      }
      if (event.has_summary()) {
        Summary* summary = event.mutable_summary();
        const int before = summary->value_size();
        auto* values = summary->mutable_value();
        values->erase(std::remove_if(values->begin(), values->end(),
                                     [&](const Summary::Value& v) {
                                       return !keep(v.tag(), event.step());
                                     }),
                      values->end());
        const int dropped = before - summary->value_size();
        if (dropped > 0) {
          changed = true;
          report.dropped += dropped;
          if (summary->value_size() == 0) continue;
          kept += EncodeRecord(event.SerializeAsString());
          continue;
        }
      }
      kept += EncodeRecord(data);  // unchanged events keep their exact bytes
    }
    if (!changed) continue;
    if (absl::Status s = util::WriteFileAtomically(path, kept); !s.ok()) return s;
    ++report.rewritten;
  }
  return report;
}

}  // namespace convnextv2::tensorboard
