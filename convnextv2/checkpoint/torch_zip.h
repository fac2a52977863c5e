// Reads the state dicts out of PyTorch's torch.save zip files without Python: a small pickle
// machine for what torch.save writes (protocol 2: dicts, OrderedDicts, lists, tuples, numbers,
// strings, tensors via persistent storages). Other Python objects (argparse.Namespace in an
// 'args' entry, say) load as opaque values and are ignored. libtorch's own pickle_load cannot
// do this: it turns every OrderedDict, so every state dict, into None.
//
//   absl::StatusOr<TorchZipDict> d = ReadTorchZip("convnextv2_atto_1k_224_ema.pt");
//   d->dicts["model"]   // name -> tensor
#ifndef CONVNEXTV2_CHECKPOINT_TORCH_ZIP_H_
#define CONVNEXTV2_CHECKPOINT_TORCH_ZIP_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace convnextv2::checkpoint {

struct TorchZipDict {
  // Top-level entries whose value is a dict of name -> tensor, by key.
  std::map<std::string, std::map<std::string, at::Tensor>> dicts;
  // The top-level dict's own tensor entries (a bare state dict).
  std::map<std::string, at::Tensor> tensors;
  std::vector<std::string> keys;  // every top-level key, in order
};

absl::StatusOr<TorchZipDict> ReadTorchZip(const std::string& path);

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_TORCH_ZIP_H_
