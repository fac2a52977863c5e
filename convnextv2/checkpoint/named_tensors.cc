#include "convnextv2/checkpoint/named_tensors.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "convnextv2/util/files.h"

namespace convnextv2::checkpoint {

absl::Status SaveNamedTensors(const torch::OrderedDict<std::string, at::Tensor>& tensors,
                              const std::string& path) {
  std::ostringstream bytes;
  try {
    torch::serialize::OutputArchive archive;
    for (const auto& item : tensors) {
      // Contiguous CPU copies: the file does not depend on the device or memory format trained on.
      archive.write(item.key(), item.value().detach().to(c10::kCPU).contiguous());
    }
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot serialize weights for ", path, ": ",
                                            e.what_without_backtrace()));
  }
  return util::WriteFileAtomically(path, bytes.str());
}

absl::StatusOr<at::Tensor> ReadNamedTensor(const std::string& path, const std::string& key) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(path, " is not a readable weights archive: ",
                                            e.what_without_backtrace()));
  }
  at::Tensor t;
  if (!archive.try_read(key, t)) {
    return absl::NotFoundError(absl::StrCat("no tensor '", key, "' in ", path));
  }
  return t;
}

}  // namespace convnextv2::checkpoint
