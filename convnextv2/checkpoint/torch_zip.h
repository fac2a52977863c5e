// PyTorch's torch.save zip format, both ways, without Python.
//
// Reading: a small pickle machine for what torch.save and libtorch's Pickler write (dicts,
// OrderedDicts, lists, tuples, numbers, strings, tensors via persistent storages). Other Python
// objects (argparse.Namespace in an 'args' entry, say) load as opaque values and are ignored.
// libtorch's own pickle_load cannot do this: it turns every OrderedDict, so every state dict,
// into None. Every record's CRC-32 from the zip's central directory is checked on every read
// (PyTorch's reader is built without those checks, so a flipped bit would load silently), and
// a file cut short is reported as truncated. The zip container is zip_records.h, the pickle
// machine unpickler.h (both internal to this package).
//
// Writing: libtorch's Pickler (without TorchScript type tags, so that
// torch.load(..., weights_only=True) accepts the file) and its PyTorchStreamWriter, plus any
// extra records, which torch.load ignores.
//
//   absl::StatusOr<TorchZipDict> d = ReadTorchZip("convnextv2_atto_1k_224_ema.pt");
//   d->dicts["model"]   // name -> tensor
//
//   std::string bytes = SerializeTorchZip(root_dict, {{"convnextv2/header.pb", header}});
#ifndef CONVNEXTV2_CHECKPOINT_TORCH_ZIP_H_
#define CONVNEXTV2_CHECKPOINT_TORCH_ZIP_H_

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::checkpoint {

struct TorchZipDict {
  // Top-level entries whose value is a dict of name -> tensor, by key.
  std::map<std::string, std::map<std::string, at::Tensor>> dicts;
  // The top-level dict's own tensor entries (a bare state dict).
  std::map<std::string, at::Tensor> tensors;
  std::vector<std::string> keys;  // every top-level key, in order
  // Every tensor reachable through nested dicts, under its dotted path ("model.head.weight",
  // "optimizer.state.0.exp_avg"), in the order of the file.
  std::vector<std::pair<std::string, at::Tensor>> flat;
  // The archive's records other than data.pkl, data/<key> and version, by their name inside
  // the archive's folder ("convnextv2/header.pb").
  std::map<std::string, std::string> extra_records;
};

// Errors name `path` (or `what`): missing, not a zip, truncated, a record failing its CRC-32
// ("checksum mismatch"), a pickle this reader cannot follow.
absl::StatusOr<TorchZipDict> ReadTorchZip(const std::string& path);
absl::StatusOr<TorchZipDict> ParseTorchZip(absl::string_view bytes, const std::string& what);

// One record of the archive at `path` (CRC-32 checked) without reading the others; nullopt
// when the archive has no such record.
absl::StatusOr<std::optional<std::string>> ReadTorchZipRecord(const std::string& path,
                                                              const std::string& name);

// The bytes torch.save would write for `root` (dicts with string keys, lists, ints, strings,
// bools and CPU tensors; no floats, which torch 1.13's weights_only loader refuses), followed
// by `extra_records`.
std::string SerializeTorchZip(
    const c10::IValue& root,
    const std::vector<std::pair<std::string, std::string>>& extra_records);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_TORCH_ZIP_H_
