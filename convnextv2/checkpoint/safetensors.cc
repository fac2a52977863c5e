#include "convnextv2/checkpoint/safetensors.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

using Json = nlohmann::json;

// The reference implementation refuses headers over 100 MB; so do we, before allocating.
constexpr uint64_t kMaxHeader = 100'000'000;

struct DType {
  const char* name;
  at::ScalarType type;
  int64_t size;
};
constexpr DType kDTypes[] = {
    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2}, {"BF16", at::kBFloat16, 2},
    {"F64", at::kDouble, 8}};
// Valid safetensors dtypes this reader does not convert (no ConvNeXt V2 weight uses them).
constexpr const char* kOtherDTypes[] = {"I64", "I32", "I16", "I8", "U64", "U32", "U16",
                                        "U8",  "BOOL", "F8_E4M3", "F8_E5M2"};

uint64_t ReadLe64(absl::string_view bytes) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

std::string Le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

struct Entry {
  std::string name;
  const DType* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

absl::StatusOr<const DType*> FindDType(const Json& v, const std::string& where) {
  if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat(where, ": no dtype string"));
  const std::string name = v.get<std::string>();
  for (const DType& d : kDTypes) {
    if (name == d.name) return &d;
  }
  for (const char* other : kOtherDTypes) {
    if (name == other) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": dtype ", name, " is not supported (F32, F16, BF16, F64 are)"));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": unknown dtype '", name, "'"));
}

absl::StatusOr<Entry> ParseEntry(const std::string& name, const Json& v,
                                 const std::string& what) {
  const std::string where = absl::StrCat(what, ": tensor '", name, "'");
  if (!v.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
  Entry e{name, nullptr, {}, 0, 0};
  CONVNEXTV2_ASSIGN_OR_RETURN(e.dtype, FindDType(v.value("dtype", Json()), where));
  const Json shape = v.value("shape", Json());
  const Json offsets = v.value("data_offsets", Json());
  if (!shape.is_array()) return absl::InvalidArgumentError(absl::StrCat(where, ": no shape"));
  uint64_t numel = 1;
  for (const Json& d : shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": bad shape ", shape.dump()));
    }
    e.shape.push_back(d.get<int64_t>());
    numel *= d.get<uint64_t>();
    if (numel > (1ull << 40)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": shape ", shape.dump(), " too large"));
    }
  }
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": data_offsets must be [begin, end]"));
  }
  e.begin = offsets[0].get<uint64_t>();
  e.end = offsets[1].get<uint64_t>();
  if (e.end < e.begin || e.end - e.begin != numel * e.dtype->size) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": data_offsets ", offsets.dump(), " hold ", e.end - e.begin, " bytes, but ",
        e.dtype->name, " ", shape.dump(), " needs ", numel * e.dtype->size));
  }
  return e;
}

absl::Status CheckLayout(std::vector<Entry>& entries, uint64_t data_size,
                         const std::string& what) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (i > 0 && e.begin < entries[i - 1].end) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": tensor '", e.name, "' (bytes ", e.begin, "-", e.end, ") overlaps tensor '",
          entries[i - 1].name, "' (bytes ", entries[i - 1].begin, "-", entries[i - 1].end, ")"));
    }
    if (e.end > data_size) {
      return absl::DataLossError(absl::StrCat(
          what, ": truncated or offsets outside the data: tensor '", e.name, "' ends at byte ",
          e.end, " of the data, which has ", data_size, " bytes"));
    }
  }
  return absl::OkStatus();
}

at::Tensor ToFloatTensor(const Entry& e, const char* data) {
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.dtype->type));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
  return e.dtype->type == at::kFloat ? t : t.to(at::kFloat);
}

absl::Status ReadMetadata(const Json& v, const std::string& what,
                          std::map<std::string, std::string>* out) {
  if (v.is_null()) return absl::OkStatus();
  if (!v.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": __metadata__ is not an object"));
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": __metadata__ entry '", it.key(), "' is not a string"));
    }
    (*out)[it.key()] = it.value().get<std::string>();
  }
  return absl::OkStatus();
}

}  // namespace

bool LooksLikeSafetensors(absl::string_view bytes) {
  if (bytes.size() < 9) return false;
  const uint64_t n = ReadLe64(bytes);
  return n >= 2 && n <= kMaxHeader && bytes[8] == '{';
}

absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes,
                                                 const std::string& what) {
  if (bytes.size() < 8) {
    return absl::DataLossError(absl::StrCat(what, ": truncated safetensors file (", bytes.size(),
                                            " bytes, not even the 8-byte header length)"));
  }
  const uint64_t n = ReadLe64(bytes);
  if (n > kMaxHeader || n > bytes.size() - 8) {
    return absl::DataLossError(absl::StrCat(what, ": the header length says ", n,
                                            " bytes, but the file has ", bytes.size() - 8,
                                            " after it (truncated, or not a safetensors file)"));
  }
  const Json header = Json::parse(bytes.substr(8, n), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the safetensors header is not a JSON object"));
  }
  SafetensorsFile out;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      CONVNEXTV2_RETURN_IF_ERROR(ReadMetadata(it.value(), what, &out.metadata));
      continue;
    }
    CONVNEXTV2_ASSIGN_OR_RETURN(Entry e, ParseEntry(it.key(), it.value(), what));
    entries.push_back(std::move(e));
  }
  const absl::string_view data = bytes.substr(8 + n);
  CONVNEXTV2_RETURN_IF_ERROR(CheckLayout(entries, data.size(), what));
  for (const Entry& e : entries) out.tensors[e.name] = ToFloatTensor(e, data.data());
  return out;
}

absl::StatusOr<SafetensorsFile> ReadSafetensors(const std::string& path) {
  CONVNEXTV2_ASSIGN_OR_RETURN(const std::string bytes, util::ReadFile(path));
  return ParseSafetensors(bytes, path);
}

std::string SerializeSafetensors(const std::map<std::string, at::Tensor>& tensors,
                                 const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    at::Tensor t = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    header[name] = {{"dtype", "F32"}, {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(t));
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out = Le64(json.size()) + json;
  out.reserve(out.size() + offset);
  for (const at::Tensor& t : data) {
    out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * 4);
  }
  return out;
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::map<std::string, at::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  return util::WriteFileAtomically(path, SerializeSafetensors(tensors, metadata));
}

}  // namespace convnextv2::checkpoint
