// TensorFlow event files, the format TensorBoard reads from a --log_dir: scalars by tag and step,
// written as the official scripts' SummaryWriter writes them.
//
//   absl::StatusOr<std::unique_ptr<EventWriter>> w = EventWriter::Open("/run/tb");
//   (*w)->AddScalar("loss/loss", /*step=*/120, 2.31);
//   (*w)->AddScalar("perf/test_acc1", /*step=*/3, 81.5);   // per-epoch tags use the epoch
//   absl::Status s = (*w)->Flush();                         // to the disk (fsync)
//
// A resumed run first drops what the files hold beyond its checkpoint, so that no step appears
// twice (each tag keeps its own step domain: iterations for loss/opt, epochs for perf):
//
//   TruncateEvents("/run/tb", [&](absl::string_view tag, int64_t step) {
//     return absl::StartsWith(tag, "perf/") ? step < next_epoch : step < next_iteration;
//   });
//
// File layout (TensorFlow's TFRecord framing), one record per Event proto (event.proto):
//   uint64 length, uint32 masked CRC-32C of those 8 bytes, length bytes of data,
//   uint32 masked CRC-32C of the data; all little-endian.
//   masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8
// The first event of a file carries file_version "brain.Event:2".
//
// Tags the training loop writes (issue 17, the official engine_finetune.py/engine_pretrain.py):
//   fine-tuning, every micro-batch at the global iteration step
//     (epoch * steps_per_epoch * update_freq + data_iter_step):
//       loss/loss, loss/class_acc (not under mixup), opt/lr, opt/min_lr, opt/weight_decay,
//       opt/grad_norm (only with AMP)
//   fine-tuning, per epoch at step = epoch:
//       perf/test_acc1, perf/test_acc5, perf/test_loss, and with EMA perf/test_acc1_ema,
//       perf/test_acc5_ema, perf/test_loss_ema
//   pre-training, once per optimizer step at step epoch_1000x
//     (int((data_iter_step / steps_per_epoch + epoch) * 1000)):
//       loss/train_loss, opt/lr
#ifndef CONVNEXTV2_TENSORBOARD_EVENT_WRITER_H_
#define CONVNEXTV2_TENSORBOARD_EVENT_WRITER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::tensorboard {

// The CRC-32C (Castagnoli) of `data`, and TensorFlow's masked form of it.
uint32_t Crc32c(absl::string_view data);
uint32_t MaskedCrc32c(absl::string_view data);

// One framed record around `data`.
std::string EncodeRecord(absl::string_view data);

// The records of an event file, every length and CRC checked. A record cut short at the end
// (a writer killed mid-write) is reported in `torn_bytes`, not as an error; a checksum that
// does not match anywhere else is an error naming the file and the offset.
struct Records {
  std::vector<std::string> data;
  uint64_t torn_bytes = 0;
};
absl::StatusOr<Records> ReadRecords(const std::string& path);

class EventWriter {
 public:
  struct Options {
    // Written events reach the file (write(2), no fsync) once this many seconds passed since
    // the last write, or when the buffer exceeds max_buffered_bytes; Flush() forces both.
    double flush_seconds = 10;
    size_t max_buffered_bytes = 1 << 20;
    // Appended to the file name, after the official parts.
    std::string filename_suffix;
  };

  // Creates `log_dir` (and parents) and a new file in it named as TensorFlow names them:
  // events.out.tfevents.<unix seconds>.<host>.<pid>.<n><suffix>. Never overwrites a file.
  static absl::StatusOr<std::unique_ptr<EventWriter>> Open(const std::string& log_dir,
                                                           const Options& options);
  static absl::StatusOr<std::unique_ptr<EventWriter>> Open(const std::string& log_dir) {
    return Open(log_dir, Options());
  }
  ~EventWriter();  // flushes (errors are logged, not lost silently)

  // One scalar at `step`; `wall_time` in seconds since the Unix epoch (now when negative).
  // TensorBoard stores scalars as float32.
  absl::Status AddScalar(absl::string_view tag, int64_t step, double value,
                         double wall_time = -1);
  // Writes what is buffered and fsyncs the file.
  absl::Status Flush();

  const std::string& path() const { return path_; }

 private:
  EventWriter(std::string path, int fd, const Options& options);
  absl::Status Append(const std::string& event_bytes);
  absl::Status WriteBuffer();

  std::string path_;
  int fd_;
  Options options_;
  std::string buffer_;
  double last_write_ = 0;
  absl::Status error_;  // the first write error sticks: later calls report it
};

// What TruncateEvents did, for the log.
struct TruncateReport {
  int files = 0;           // event files read
  int rewritten = 0;       // files rewritten (something was dropped)
  int64_t dropped = 0;     // scalar values dropped
  uint64_t torn_bytes = 0; // bytes of torn final records dropped
};

// Keeps in every event file of `log_dir` (events.out.tfevents.*) only the scalar values for
// which keep(tag, step) holds, and the events that carry no scalars; each changed file is
// rewritten atomically (temporary file, fsync, rename). A missing `log_dir` is no error.
absl::StatusOr<TruncateReport> TruncateEvents(
    const std::string& log_dir, const std::function<bool(absl::string_view, int64_t)>& keep);

}  // namespace convnextv2::tensorboard

#endif  // CONVNEXTV2_TENSORBOARD_EVENT_WRITER_H_
