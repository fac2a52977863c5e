#include "convnextv2/checkpoint/torch_zip.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/file_adapter.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <filesystem>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/checkpoint/unpickler.h"
#include "convnextv2/checkpoint/zip_records.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

using caffe2::serialize::ReadAdapterInterface;

void Flatten(const Ref& v, const std::string& path,
             std::vector<std::pair<std::string, at::Tensor>>* out) {
  if (v->kind == Obj::kTensor) {
    out->emplace_back(path, v->tensor);
    return;
  }
  if (v->kind != Obj::kDict) return;
  for (const auto& [k, item] : v->dict) {
    std::string key;
    if (k->kind == Obj::kStr) {
      key = k->s;
    } else if (k->kind == Obj::kInt) {
      key = std::to_string(k->i);
    } else {
      continue;
    }
    Flatten(item, path.empty() ? key : absl::StrCat(path, ".", key), out);
  }
}

bool IsPickleRecord(const std::string& name) {
  return name == "data.pkl" || name == "version" || absl::StartsWith(name, "data/");
}

absl::StatusOr<TorchZipDict> ReadArchive(std::shared_ptr<ReadAdapterInterface> in,
                                         const std::string& what) {
  try {
    absl::StatusOr<std::unique_ptr<ZipRecords>> zip = ZipRecords::Open(std::move(in), what);
    CONVNEXTV2_RETURN_IF_ERROR(zip);
    if (!(*zip)->Has("data.pkl")) {
      if (absl::Status s = (*zip)->VerifyUnread(); !s.ok()) return s;
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is a zip file without data.pkl: not written by torch.save"));
    }
    absl::StatusOr<Record> pickle = (*zip)->Get("data.pkl");
    CONVNEXTV2_RETURN_IF_ERROR(pickle);
    Unpickler unpickler(zip->get(), what);
    absl::StatusOr<Ref> root =
        unpickler.Run(static_cast<const char*>(pickle->data.get()), pickle->size);
    CONVNEXTV2_RETURN_IF_ERROR(root);
    TorchZipDict out;
    for (const std::string& name : (*zip)->Names()) {
      if (IsPickleRecord(name)) continue;
      absl::StatusOr<Record> r = (*zip)->Get(name);
      CONVNEXTV2_RETURN_IF_ERROR(r);
      out.extra_records[name].assign(static_cast<const char*>(r->data.get()), r->size);
    }
    if (absl::Status s = (*zip)->VerifyUnread(); !s.ok()) return s;
    if ((*root)->kind != Obj::kDict) {
      return absl::InvalidArgumentError(absl::StrCat(what, " holds no dict at the top level"));
    }
    for (const auto& [k, v] : (*root)->dict) {
      if (k->kind != Obj::kStr) continue;
      out.keys.push_back(k->s);
      if (v->kind == Obj::kTensor) out.tensors[k->s] = v->tensor;
      if (v->kind != Obj::kDict) continue;
      std::map<std::string, at::Tensor>& d = out.dicts[k->s];
      for (const auto& [name, t] : v->dict) {
        if (name->kind == Obj::kStr && t->kind == Obj::kTensor) d[name->s] = t->tensor;
      }
    }
    Flatten(*root, "", &out.flat);
    return out;
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " cannot be read as a torch.save zip file: ", e.what_without_backtrace()));
  }
}

absl::Status CheckReadable(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": no such file"));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, ": a directory"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TorchZipDict> ReadTorchZip(const std::string& path) {
  if (absl::Status s = CheckReadable(path); !s.ok()) return s;
  try {
    return ReadArchive(std::make_shared<caffe2::serialize::FileAdapter>(path), path);
  } catch (const c10::Error& e) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", e.what_without_backtrace()));
  }
}

absl::StatusOr<TorchZipDict> ParseTorchZip(absl::string_view bytes, const std::string& what) {
  return ReadArchive(
      std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), bytes.size()), what);
}

absl::StatusOr<std::optional<std::string>> ReadTorchZipRecord(const std::string& path,
                                                              const std::string& name) {
  if (absl::Status s = CheckReadable(path); !s.ok()) return s;
  try {
    absl::StatusOr<std::unique_ptr<ZipRecords>> zip =
        ZipRecords::Open(std::make_shared<caffe2::serialize::FileAdapter>(path), path);
    CONVNEXTV2_RETURN_IF_ERROR(zip);
    if (!(*zip)->Has(name)) return std::optional<std::string>();
    absl::StatusOr<Record> r = (*zip)->Get(name);
    CONVNEXTV2_RETURN_IF_ERROR(r);
    return std::optional<std::string>(
        std::string(static_cast<const char*>(r->data.get()), r->size));
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " cannot be read as a torch.save zip file: ", e.what_without_backtrace()));
  }
}

std::string SerializeTorchZip(
    const c10::IValue& root,
    const std::vector<std::pair<std::string, std::string>>& extra_records) {
  std::vector<char> pickle;
  // Without type tags: torch.jit._pickle.restore_type_tag is not among the globals that
  // torch.load(..., weights_only=True) accepts.
  torch::jit::Pickler pickler(
      [&pickle](const char* data, size_t n) { pickle.insert(pickle.end(), data, data + n); },
      /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
      /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(root);
  pickler.stop();
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&out](const void* data, size_t n) {
    out.append(static_cast<const char*>(data), n);
    return n;
  });
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  // The pickler names storages by their index in tensorData(), as torch.save does.
  const std::vector<at::Tensor>& storages = pickler.tensorData();
  for (size_t i = 0; i < storages.size(); ++i) {
    const at::Storage& s = storages[i].storage();
    TORCH_CHECK(s.device().is_cpu(), "SerializeTorchZip: tensors must be on the CPU");
    writer.writeRecord(absl::StrCat("data/", i), s.data(), s.nbytes());
  }
  for (const auto& [name, bytes] : extra_records) {
    writer.writeRecord(name, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return out;
}

}  // namespace convnextv2::checkpoint
