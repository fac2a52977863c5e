#include "convnextv2/checkpoint/file.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <map>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/checkpoint/torch_zip.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"
#include "google/protobuf/descriptor.h"

namespace convnextv2::checkpoint {
namespace {

// Format version 1: this project's own container, read only.
constexpr char kMagic[] = "CNV2CKPT";
constexpr char kEndMagic[] = "CNV2END!";
constexpr size_t kMagicSize = 8;

struct DtypeName {
  at::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {
    {at::kFloat, "float32"}, {at::kDouble, "float64"}, {at::kHalf, "float16"},
    {at::kBFloat16, "bfloat16"}, {at::kLong, "int64"},  {at::kInt, "int32"},
    {at::kShort, "int16"},   {at::kChar, "int8"},      {at::kByte, "uint8"},
    {at::kBool, "bool"},
};

const char* NameOf(at::ScalarType t) {
  for (const DtypeName& d : kDtypes) {
    if (d.type == t) return d.name;
  }
  return nullptr;
}

uint32_t Crc32(absl::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < bytes.size()) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(bytes.size() - done, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), n);
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

// Reads fields from a byte range; the first failure sticks and names what was being read.
class Reader {
 public:
  Reader(absl::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  bool Get(T* value) {
    if (bytes_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetBytes(size_t n, absl::string_view* out) {
    if (bytes_.size() - pos_ < n) return false;
    *out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool GetString(absl::string_view* out) {
    uint32_t n;
    return Get(&n) && GetBytes(n, out);
  }
  size_t pos() const { return pos_; }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

absl::Status Corrupt(absl::string_view what, absl::string_view detail) {
  return absl::DataLossError(absl::StrCat(what, ": ", detail));
}

absl::Status ParseHeaderPart(Reader& r, absl::string_view bytes, absl::string_view what,
                             CheckpointHeader* header) {
  if (bytes.size() < kMagicSize || std::memcmp(bytes.data(), kMagic, kMagicSize) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is not a convnextv2 checkpoint (no CNV2CKPT signature); to initialize from "
        "PyTorch or pre-training weights use checkpoint.finetune"));
  }
  absl::string_view magic;
  r.GetBytes(kMagicSize, &magic);
  uint32_t version;
  if (!r.Get(&version)) return Corrupt(what, "truncated (ends inside the header)");
  if (version != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " has checkpoint format version ", version, "; this build reads up to ",
        kFormatVersion, " (written by a newer convnextv2?)"));
  }
  uint64_t n;
  absl::string_view header_bytes;
  if (!r.Get(&n) || !r.GetBytes(n, &header_bytes)) {
    return Corrupt(what, "truncated (ends inside the header)");
  }
  if (!header->ParseFromArray(header_bytes.data(), static_cast<int>(header_bytes.size()))) {
    return Corrupt(what, "the header does not parse");
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> ParseVersion1(absl::string_view bytes, absl::string_view what) {
  Checkpoint ckpt;
  Reader r(bytes);
  if (absl::Status s = ParseHeaderPart(r, bytes, what, &ckpt.header); !s.ok()) return s;
  if (bytes.size() < r.pos() + 4 + kMagicSize ||
      std::memcmp(bytes.data() + bytes.size() - kMagicSize, kEndMagic, kMagicSize) != 0) {
    return Corrupt(what, absl::StrCat("truncated or incomplete (", bytes.size(),
                                      " bytes, no end marker)"));
  }
  const size_t body = bytes.size() - 4 - kMagicSize;
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + body, 4);
  if (Crc32(bytes.substr(0, body)) != stored_crc) {
    return Corrupt(what, "checksum mismatch (the file is corrupt)");
  }
  Reader t(bytes.substr(0, body));
  absl::string_view skip;
  t.GetBytes(r.pos(), &skip);
  uint64_t count;
  if (!t.Get(&count)) return Corrupt(what, "no tensor table");
  for (uint64_t i = 0; i < count; ++i) {
    absl::string_view name, dtype, data;
    uint32_t ndim;
    if (!t.GetString(&name) || !t.GetString(&dtype) || !t.Get(&ndim) || ndim > 64) {
      return Corrupt(what, absl::StrCat("bad entry ", i));
    }
    std::vector<int64_t> shape(ndim);
    int64_t numel = 1;
    for (int64_t& d : shape) {
      if (!t.Get(&d) || d < 0) return Corrupt(what, absl::StrCat("bad shape of ", name));
      numel *= d;
    }
    uint64_t nbytes;
    if (!t.Get(&nbytes) || !t.GetBytes(nbytes, &data)) {
      return Corrupt(what, absl::StrCat("bad data of ", name));
    }
    std::optional<at::ScalarType> type;
    for (const DtypeName& d : kDtypes) {
      if (dtype == d.name) type = d.type;
    }
    if (!type) return Corrupt(what, absl::StrCat(name, " has unknown dtype ", dtype));
    at::Tensor tensor = at::empty(shape, at::TensorOptions().dtype(*type));
    if (static_cast<uint64_t>(numel * tensor.element_size()) != nbytes) {
      return Corrupt(what, absl::StrCat(name, ": ", nbytes, " bytes for ", numel, " elements"));
    }
    if (nbytes > 0) std::memcpy(tensor.data_ptr(), data.data(), nbytes);
    ckpt.tensors.emplace_back(std::string(name), std::move(tensor));
  }
  if (t.pos() != body) return Corrupt(what, "trailing bytes after the tensor table");
  return ckpt;
}

constexpr char kZipMagic[] = "PK\x03\x04";
constexpr char kInfoKey[] = "convnextv2";
constexpr char kEpochKey[] = "epoch";

// The first bytes of a file ("" when it cannot be opened).
std::string Peek(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(n, '\0');
  in.read(bytes.data(), n);
  bytes.resize(std::max<std::streamsize>(in.gcount(), 0));
  return bytes;
}

absl::Status NotOurs(absl::string_view what, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      what, " is not a convnextv2 checkpoint (", why, "); to initialize from PyTorch or "
      "pre-training weights use checkpoint.finetune"));
}

absl::Status ParseHeaderRecord(absl::string_view bytes, absl::string_view what,
                               CheckpointHeader* header) {
  if (!header->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Corrupt(what, absl::StrCat("the ", kHeaderRecord, " record does not parse"));
  }
  if (header->format_version() > kFormatVersion || header->format_version() < 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " has checkpoint format version ", header->format_version(),
        "; this build reads up to ", kFormatVersion, " (written by a newer convnextv2?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Checkpoint> FromZip(absl::StatusOr<TorchZipDict> zip, absl::string_view what) {
  CONVNEXTV2_RETURN_IF_ERROR(zip);
  auto header = zip->extra_records.find(kHeaderRecord);
  if (header == zip->extra_records.end()) {
    return NotOurs(what, absl::StrCat("a PyTorch zip file without the ", kHeaderRecord,
                                      " record"));
  }
  Checkpoint ckpt;
  if (absl::Status s = ParseHeaderRecord(header->second, what, &ckpt.header); !s.ok()) return s;
  const std::string info_prefix = absl::StrCat(kInfoKey, ".");
  for (auto& [name, tensor] : zip->flat) {
    if (absl::StartsWith(name, info_prefix)) continue;  // the header again, for Python eyes
    ckpt.tensors.emplace_back(name, tensor.contiguous());
  }
  return ckpt;
}

// An int where the value fits torch 1.13's weights_only loader (which lacks 64-bit ints),
// else a 0-dim int64 tensor.
c10::IValue PlainInt(int64_t v) {
  if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
    return c10::IValue(v);
  }
  return c10::IValue(at::scalar_tensor(v, at::kLong));
}

std::optional<c10::IValue> PlainField(const google::protobuf::Message& m,
                                      const google::protobuf::FieldDescriptor* f) {
  namespace pb = google::protobuf;
  const pb::Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32: return PlainInt(r->GetInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_INT64: return PlainInt(r->GetInt64(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT32: return PlainInt(r->GetUInt32(m, f));
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      return PlainInt(static_cast<int64_t>(r->GetUInt64(m, f)));
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      return c10::IValue(at::scalar_tensor(r->GetDouble(m, f), at::kDouble));
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return c10::IValue(at::scalar_tensor(r->GetFloat(m, f), at::kDouble));
    case pb::FieldDescriptor::CPPTYPE_BOOL: return c10::IValue(r->GetBool(m, f));
    case pb::FieldDescriptor::CPPTYPE_STRING: return c10::IValue(r->GetString(m, f));
    case pb::FieldDescriptor::CPPTYPE_ENUM: return c10::IValue(r->GetEnum(m, f)->name());
    default: return std::nullopt;
  }
}

// The header's set fields as a plain dict (maps with string keys become dicts).
c10::impl::GenericDict HeaderAsDict(const CheckpointHeader& header) {
  namespace pb = google::protobuf;
  c10::impl::GenericDict info(c10::StringType::get(), c10::AnyType::get());
  const pb::Reflection* r = header.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(header, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->is_map() && f->message_type()->map_key()->cpp_type() ==
                           pb::FieldDescriptor::CPPTYPE_STRING) {
      c10::impl::GenericDict map(c10::StringType::get(), c10::AnyType::get());
      for (int i = 0; i < r->FieldSize(header, f); ++i) {
        const pb::Message& entry = r->GetRepeatedMessage(header, f, i);
        const pb::Descriptor* d = entry.GetDescriptor();
        std::optional<c10::IValue> value = PlainField(entry, d->map_value());
        if (value) map.insert(entry.GetReflection()->GetString(entry, d->map_key()), *value);
      }
      info.insert(f->name(), map);
    } else if (!f->is_repeated()) {
      if (std::optional<c10::IValue> value = PlainField(header, f)) info.insert(f->name(), *value);
    }
  }
  return info;
}

}  // namespace

const at::Tensor* Checkpoint::Find(absl::string_view name) const {
  for (const auto& [n, t] : tensors) {
    if (n == name) return &t;
  }
  return nullptr;
}

std::vector<std::pair<std::string, at::Tensor>> Checkpoint::WithPrefix(
    absl::string_view prefix) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [n, t] : tensors) {
    if (absl::StartsWith(n, prefix)) out.emplace_back(n.substr(prefix.size()), t);
  }
  return out;
}

std::string SerializeCheckpoint(const Checkpoint& checkpoint) {
  CheckpointHeader header = checkpoint.header;
  header.set_format_version(kFormatVersion);
  if (!header.has_created_unix()) header.set_created_unix(std::time(nullptr));
  // One dict per name prefix, in order of first appearance; names without a dot stay at the
  // top level.
  std::vector<std::pair<std::string, c10::Dict<std::string, at::Tensor>>> groups;
  std::map<std::string, size_t> group_index;
  std::vector<std::pair<std::string, at::Tensor>> top;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    TORCH_CHECK(NameOf(t.scalar_type()) != nullptr, "checkpoint tensor ", name,
                " has unsupported dtype ", t.scalar_type());
    const size_t dot = name.find('.');
    if (dot == std::string::npos) {
      top.emplace_back(name, t);
      continue;
    }
    const std::string group = name.substr(0, dot);
    auto [it, added] = group_index.emplace(group, groups.size());
    if (added) groups.emplace_back(group, c10::Dict<std::string, at::Tensor>());
    groups[it->second].second.insert_or_assign(name.substr(dot + 1), t);
  }
  c10::impl::GenericDict root(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [group, dict] : groups) root.insert(group, dict);
  for (const auto& [name, t] : top) {
    TORCH_CHECK(!group_index.count(name), "checkpoint name ", name,
                " is both a tensor and the prefix of others");
    root.insert(name, t);
  }
  for (const char* reserved : {kEpochKey, kInfoKey}) {
    TORCH_CHECK(!root.contains(reserved), "checkpoint names may not use the reserved '",
                reserved, "'");
  }
  if (header.has_epoch()) root.insert(kEpochKey, static_cast<int64_t>(header.epoch()));
  root.insert(kInfoKey, HeaderAsDict(header));
  return SerializeTorchZip(c10::IValue(root), {{kHeaderRecord, header.SerializeAsString()}});
}

absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view bytes, absl::string_view what) {
  if (absl::StartsWith(bytes, absl::string_view(kMagic, kMagicSize))) {
    return ParseVersion1(bytes, what);
  }
  if (absl::StartsWith(bytes, kZipMagic)) {
    return FromZip(ParseTorchZip(bytes, std::string(what)), what);
  }
  return NotOurs(what, "neither a torch.save zip file nor a CNV2CKPT file");
}

absl::Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint) {
  return util::WriteFileAtomically(path, SerializeCheckpoint(checkpoint));
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  const std::string what = absl::StrCat("checkpoint ", path);
  const std::string magic = Peek(path, kMagicSize);
  if (absl::StartsWith(magic, kZipMagic)) return FromZip(ReadTorchZip(path), what);
  absl::StatusOr<std::string> bytes = util::ReadFile(path);
  CONVNEXTV2_RETURN_IF_ERROR(bytes);
  return ParseCheckpoint(*bytes, what);
}

absl::StatusOr<CheckpointHeader> ReadHeader(const std::string& path) {
  const std::string what = absl::StrCat("checkpoint ", path);
  const std::string magic = Peek(path, kMagicSize);
  CheckpointHeader header;
  if (absl::StartsWith(magic, kZipMagic)) {
    absl::StatusOr<std::optional<std::string>> record = ReadTorchZipRecord(path, kHeaderRecord);
    CONVNEXTV2_RETURN_IF_ERROR(record);
    if (!record->has_value()) {
      return NotOurs(what, absl::StrCat("a PyTorch zip file without the ", kHeaderRecord,
                                        " record"));
    }
    if (absl::Status s = ParseHeaderRecord(**record, what, &header); !s.ok()) return s;
    return header;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return util::ReadFile(path).status();
  std::string prefix(kMagicSize + 12, '\0');
  in.read(prefix.data(), prefix.size());
  prefix.resize(in.gcount());
  uint64_t n = 0;
  if (prefix.size() == kMagicSize + 12) std::memcpy(&n, prefix.data() + kMagicSize + 4, 8);
  if (n < (1u << 30)) {
    std::string rest(n, '\0');
    in.read(rest.data(), rest.size());
    rest.resize(in.gcount());
    prefix += rest;
  }
  Reader r(prefix);
  if (absl::Status s = ParseHeaderPart(r, prefix, what, &header); !s.ok()) return s;
  return header;
}

bool LooksLikeCheckpoint(const std::string& path) {
  const std::string magic = Peek(path, kMagicSize);
  if (magic == absl::string_view(kMagic, kMagicSize)) return true;
  if (!absl::StartsWith(magic, kZipMagic)) return false;
  absl::StatusOr<std::optional<std::string>> record = ReadTorchZipRecord(path, kHeaderRecord);
  return record.ok() && record->has_value();
}

}  // namespace convnextv2::checkpoint
