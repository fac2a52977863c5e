#include "convnextv2/checkpoint/file.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/util/files.h"

namespace convnextv2::checkpoint {
namespace {

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

template <typename T>
void Put(std::string* out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // the supported hosts are little-endian
  out->append(bytes, sizeof(T));
}

void PutString(std::string* out, absl::string_view s) {
  Put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
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
  if (version > static_cast<uint32_t>(kFormatVersion) || version == 0) {
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
  std::string out(kMagic, kMagicSize);
  Put<uint32_t>(&out, kFormatVersion);
  const std::string header_bytes = header.SerializeAsString();
  Put<uint64_t>(&out, header_bytes.size());
  out += header_bytes;
  Put<uint64_t>(&out, checkpoint.tensors.size());
  for (const auto& [name, tensor] : checkpoint.tensors) {
    const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
    const char* dtype = NameOf(t.scalar_type());
    TORCH_CHECK(dtype != nullptr, "checkpoint tensor ", name, " has unsupported dtype ",
                t.scalar_type());
    PutString(&out, name);
    PutString(&out, dtype);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.dim()));
    for (int64_t d : t.sizes()) Put<int64_t>(&out, d);
    const uint64_t nbytes = t.numel() * t.element_size();
    Put<uint64_t>(&out, nbytes);
    out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  }
  Put<uint32_t>(&out, Crc32(out));
  out.append(kEndMagic, kMagicSize);
  return out;
}

absl::StatusOr<Checkpoint> ParseCheckpoint(absl::string_view bytes, absl::string_view what) {
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

absl::Status WriteCheckpoint(const std::string& path, const Checkpoint& checkpoint) {
  return util::WriteFileAtomically(path, SerializeCheckpoint(checkpoint));
}

absl::StatusOr<Checkpoint> ReadCheckpoint(const std::string& path) {
  absl::StatusOr<std::string> bytes = util::ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return ParseCheckpoint(*bytes, absl::StrCat("checkpoint ", path));
}

absl::StatusOr<CheckpointHeader> ReadHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open checkpoint ", path));
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
  CheckpointHeader header;
  Reader r(prefix);
  if (absl::Status s = ParseHeaderPart(r, prefix, absl::StrCat("checkpoint ", path), &header);
      !s.ok()) {
    return s;
  }
  return header;
}

bool LooksLikeCheckpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[kMagicSize] = {};
  in.read(magic, kMagicSize);
  return in.gcount() == static_cast<std::streamsize>(kMagicSize) &&
         std::memcmp(magic, kMagic, kMagicSize) == 0;
}

}  // namespace convnextv2::checkpoint
