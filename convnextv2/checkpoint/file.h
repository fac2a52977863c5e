// The checkpoint file: PyTorch's own torch.save format, with a versioned header inside.
//
//   Checkpoint ckpt;
//   ckpt.header.set_model("convnextv2_atto");
//   ckpt.Add("model.head.weight", model->head->weight);
//   absl::Status s = WriteCheckpoint("/run/checkpoint-3.pth", ckpt);   // atomic
//   absl::StatusOr<Checkpoint> back = ReadCheckpoint("/run/checkpoint-3.pth");
//
// In Python, torch.load("/run/checkpoint-3.pth", weights_only=True) returns a dict:
//   "model", "optimizer", "model_ema", "scaler", "rng", ...   one per name prefix: the tensors
//       named "<prefix>.<rest>" as {rest: tensor} ("model" is the official state dict)
//   "epoch"        the header's epoch (an int), as in the official checkpoints
//   "convnextv2"   the header's fields as plain values (ints, strings; doubles as 0-dim float64
//                  tensors, which torch 1.13's weights_only loader accepts where floats it
//                  does not): kind, model, optimizer, next_epoch, next_step, global_step,
//                  best_acc1, scalars, config_text ...
// The CheckpointHeader itself travels as the extra zip record "convnextv2/header.pb"; reading
// takes the header from it, and the tensors from the dict by their dotted names.
// Format version 1, this project's earlier container ("CNV2CKPT" ... "CNV2END!"), still reads.
// Every zip record's CRC-32 is checked on every read (see torch_zip.h): a truncated or
// bit-flipped file is refused with an error naming it. Writing goes through a temporary file,
// fsync and rename: a crash leaves the old file intact.
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

inline constexpr int kFormatVersion = 2;
// The zip record that holds the CheckpointHeader (protobuf binary).
inline constexpr char kHeaderRecord[] = "convnextv2/header.pb";

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

// Serializes to the bytes of a torch.save zip (format_version is filled in); tensors are
// copied to the CPU. Names must not be "epoch" or start with "convnextv2.", and a name may not
// be both a tensor and the prefix of others ("model" and "model.w").
std::string SerializeCheckpoint(const Checkpoint& checkpoint);
absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view bytes, absl::string_view what);

// Atomic write; an error names the path. Nothing at `path` is touched on failure.
absl::Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint);

// Reads and verifies (every record's CRC-32, version, structure). Errors name the file and say
// whether it is missing, not a checkpoint, truncated, corrupt or from a newer version.
absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

// Only the header (the header record's CRC-32 is checked, not the tensors'): for ordering
// candidates cheaply.
absl::StatusOr<CheckpointHeader> ReadHeader(const std::string& path);

// True for a file of this format (a torch.save zip with the header record) or of version 1.
bool LooksLikeCheckpoint(const std::string& path);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_FILE_H_
