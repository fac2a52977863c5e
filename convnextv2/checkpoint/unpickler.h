// A small pickle machine for what torch.save and libtorch's Pickler write: dicts, OrderedDicts,
// lists, tuples, numbers, strings, and tensors through persistent storage ids. Other Python
// objects (argparse.Namespace in an 'args' entry, say) load as opaque values. libtorch's own
// pickle_load cannot do this: it turns every OrderedDict, so every state dict, into None.
// Internal to the checkpoint package (torch_zip.h is the API).
//
//   Unpickler unpickler(&zip, path);          // storages come from the archive's data/<key>
//   absl::StatusOr<Ref> root = unpickler.Run(bytes, size);
#ifndef CONVNEXTV2_CHECKPOINT_UNPICKLER_H_
#define CONVNEXTV2_CHECKPOINT_UNPICKLER_H_

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/checkpoint/zip_records.h"

namespace convnextv2::checkpoint {

struct Obj;
using Ref = std::shared_ptr<Obj>;

// One Python value.
struct Obj {
  enum Kind { kNone, kBool, kInt, kFloat, kStr, kTuple, kList, kDict, kGlobal, kTensor, kOpaque };
  Kind kind = kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;  // str, bytes, or "module.name" of a global
  std::vector<Ref> items;
  std::vector<std::pair<Ref, Ref>> dict;
  at::Tensor tensor;  // a tensor, or a whole storage as a 1-D tensor
};

// Runs the pickle of one archive; errors (DataLoss) name `path` and data.pkl.
class Unpickler {
 public:
  Unpickler(ZipRecords* zip, std::string path) : zip_(*zip), path_(std::move(path)) {}

  // The value STOP leaves on the stack (None when the stack is empty).
  absl::StatusOr<Ref> Run(const char* data, size_t size);

 private:
  absl::Status Step(unsigned char op);
  absl::Status Error(absl::string_view what) const;
  bool Need(size_t n) const { return static_cast<size_t>(end_ - p_) >= n; }
  template <typename T>
  T Read();
  std::string Line();
  Ref Pop();
  std::vector<Ref> PopToMark();
  void PushBytes(size_t n);
  void PushInt(int64_t v);

  // Opcode groups, each checking what it reads and pops.
  absl::Status Framing(unsigned char op);
  absl::Status PushNumber(unsigned char op);
  absl::Status PushLong1();
  absl::Status PushBinFloat();
  absl::Status PushString(unsigned char op);
  absl::Status PushGlobal(unsigned char op);
  absl::Status Memo(unsigned char op);
  absl::Status PushEmpty(unsigned char op);
  absl::Status MakeSequence(unsigned char op);
  absl::Status Append(unsigned char op);
  absl::Status SetItems(unsigned char op);
  absl::Status Apply(unsigned char op);

  absl::StatusOr<Ref> Call(const Ref& callable, const Ref& args);
  absl::StatusOr<Ref> Storage(const Ref& pid);

  ZipRecords& zip_;
  std::string path_;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  bool done_ = false;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Ref> memo_;
  std::unordered_map<std::string, Ref> storages_;
};

}  // namespace convnextv2::checkpoint

#endif  // CONVNEXTV2_CHECKPOINT_UNPICKLER_H_
