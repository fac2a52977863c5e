// safetensors files (https://huggingface.co/docs/safetensors), both ways: what timm and
// Hugging Face transformers store weights in.
//
//   absl::StatusOr<SafetensorsFile> f = ReadSafetensors("model.safetensors");
//   f->tensors["head.weight"]   // float32, CPU, whatever dtype (F32, F16, BF16) the file held
//   f->metadata["format"]       // "pt"
//
//   absl::Status s = WriteSafetensors("/out/model.safetensors", tensors, {{"format", "pt"}});
//
// The format: an unsigned 64-bit little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}, possibly padded with trailing spaces), then the raw
// little-endian tensor data, offsets relative to its start. The reader checks everything a
// writer could get wrong (a header longer than the file, offsets outside the data or not
// matching dtype and shape, tensors that overlap, unknown dtypes, a file cut short) and names
// the file and the tensor. The writer stores float32 (other dtypes are converted), pads the
// header to 8 bytes as the reference implementation does, and writes atomically.
#ifndef CONVNEXTV2_CHECKPOINT_SAFETENSORS_H_
#define CONVNEXTV2_CHECKPOINT_SAFETENSORS_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::checkpoint {

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;     // float32, contiguous, CPU
  std::map<std::string, std::string> metadata;   // the "__metadata__" entry, if any
};

// Errors are InvalidArgument (DataLoss for a truncated file) naming `path` and the tensor.
absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path);
absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes,
                                                 const std::string& what);

// True when the first bytes of `bytes` could start a safetensors file (a plausible header
// length followed by '{').
bool LooksLikeSafetensors(absl::string_view bytes);

std::string SerializeSafetensors(const std::map<std::string, at::Tensor>& tensors,
                                 const std::map<std::string, std::string>& metadata);
// Atomic (util/files): a crash leaves the old file or the new one, never a part.
absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_SAFETENSORS_H_
