// The checkpoint file: a versioned, self-describing container of named tensors.
//
//   Checkpoint ckpt;
//   ckpt.header.set_model("convnextv2_atto");
//   ckpt.Add("model.head.weight", model->head->weight);
//   absl::Status s = WriteCheckpoint("/run/checkpoint-3.pth", ckpt);   // atomic
//   absl::StatusOr<Checkpoint> back = ReadCheckpoint("/run/checkpoint-3.pth");
//
// Layout (all integers little-endian):
//   "CNV2CKPT"  uint32 format_version
//   uint64 n    n bytes: CheckpointHeader (protobuf binary)
//   uint64 count, then per tensor:
//     uint32 n, name;  uint32 n, dtype name ("float32", "int64", ...);  uint32 ndim, int64 dims;
//     uint64 nbytes, the contiguous little-endian element bytes
//   uint32 CRC-32 of every byte before it;  "CNV2END!"
// Tensors are found by name, never by position, so files stay loadable when code changes.
// Writing goes through a temporary file, fsync and rename: a crash leaves the old file intact.
#ifndef CONVNEXTV2_CHECKPOINT_FILE_H_
#define CONVNEXTV2_CHECKPOINT_FILE_H_

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/checkpoint/checkpoint.pb.h"

namespace convnextv2::checkpoint {

inline constexpr int kFormatVersion = 1;

struct Checkpoint {
  CheckpointHeader header;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // in writing order

  void Add(std::string name, const at::Tensor& tensor) {
    tensors.emplace_back(std::move(name), tensor);
  }
  // nullptr when absent.
  const at::Tensor* Find(absl::string_view name) const;
  // The tensors whose names start with `prefix`, with the prefix removed.
  std::vector<std::pair<std::string, at::Tensor>> WithPrefix(absl::string_view prefix) const;
};

// Serializes to bytes (format_version is filled in); tensors are copied to CPU.
std::string SerializeCheckpoint(const Checkpoint& checkpoint);
absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view bytes, absl::string_view what);

// Atomic write; an error names the path. Nothing at `path` is touched on failure.
absl::Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and verifies (magic, version, checksum, structure). Errors name the file and say
// whether it is missing, not a checkpoint, truncated, corrupt or from a newer version.
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

// Only the header (no checksum verification): for ordering candidates cheaply.
absl::StatusOr<CheckpointHeader> ReadHeader(const std::string& path);

// True when the file starts with the checkpoint magic.
bool LooksLikeCheckpoint(const std::string& path);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_FILE_H_
