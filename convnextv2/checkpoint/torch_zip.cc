#include "convnextv2/checkpoint/torch_zip.h"
#include "convnextv2/util/status_macros.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/file_adapter.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace convnextv2::checkpoint {
namespace {

using caffe2::serialize::ReadAdapterInterface;

uint32_t Crc32(const void* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
T Le(const std::string& bytes, size_t at) {  // the zip format is little-endian, as the hosts
  T v;
  std::memcpy(&v, bytes.data() + at, sizeof(T));
  return v;
}

struct Record {
  at::DataPtr data;
  size_t size = 0;
};

// The records of a zip archive as PyTorch's reader returns them, each checked against the
// CRC-32 and size the central directory records for it. Names are relative to the archive's
// top folder ("data.pkl", "data/0"), as PyTorchStreamReader takes them.
class ZipRecords {
 public:
  static absl::StatusOr<std::unique_ptr<ZipRecords>> Open(
      std::shared_ptr<ReadAdapterInterface> in, const std::string& what) {
    auto zip = std::unique_ptr<ZipRecords>(new ZipRecords(what));
    if (absl::Status s = zip->ReadDirectory(*in); !s.ok()) return s;
    zip->reader_ = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::move(in));
    return zip;
  }

  bool Has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, e] : entries_) names.push_back(name);
    return names;
  }

  absl::StatusOr<Record> Get(const std::string& name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat(what_, ": the archive has no record ", name));
    }
    Record r;
    std::tie(r.data, r.size) = reader_->getRecord(name);
    if (r.size != it->second.size) {
      return Corrupt(absl::StrCat("record ", name, " holds ", r.size, " bytes, its directory "
                                  "entry says ", it->second.size));
    }
    const uint32_t crc = Crc32(r.data.get(), r.size);
    if (crc != it->second.crc) {
      return Corrupt(absl::StrFormat(
          "checksum mismatch in record %s (CRC-32 %08x, the archive says %08x): the file is "
          "corrupt", name, crc, it->second.crc));
    }
    it->second.checked = true;
    return r;
  }

  // Checks the records nobody has read yet.
  absl::Status VerifyUnread() {
    for (auto& [name, e] : entries_) {
      if (e.checked) continue;
      absl::StatusOr<Record> r = Get(name);
      CONVNEXTV2_RETURN_IF_ERROR(r);
    }
    return absl::OkStatus();
  }

 private:
  struct Entry {
    uint32_t crc = 0;
    uint64_t size = 0;
    bool checked = false;
  };

  explicit ZipRecords(std::string what) : what_(std::move(what)) {}

  absl::Status Corrupt(absl::string_view detail) const {
    return absl::DataLossError(absl::StrCat(what_, ": ", detail));
  }

  bool ReadAt(const ReadAdapterInterface& in, uint64_t pos, size_t n, std::string* out) const {
    if (pos > in.size() || in.size() - pos < n) return false;
    out->resize(n);
    return n == 0 || in.read(pos, out->data(), n, "zip directory") == n;
  }

  // The end-of-central-directory record (zip64 when the counts overflow), then every entry.
  absl::Status ReadDirectory(const ReadAdapterInterface& in) {
    const uint64_t size = in.size();
    const absl::Status truncated = Corrupt(absl::StrCat(
        "truncated or incomplete (", size, " bytes, no end-of-central-directory record)"));
    if (size < 22) return truncated;
    const size_t tail_size = static_cast<size_t>(std::min<uint64_t>(size, 22 + 0xFFFF));
    std::string tail;
    if (!ReadAt(in, size - tail_size, tail_size, &tail)) return truncated;
    size_t at = tail_size - 22 + 1;
    bool found = false;
    while (at-- > 0) {
      if (Le<uint32_t>(tail, at) == 0x06054b50 &&
          at + 22 + Le<uint16_t>(tail, at + 20) == tail_size) {
        found = true;
        break;
      }
    }
    if (!found) return truncated;
    const uint64_t eocd = size - tail_size + at;
    uint64_t count = Le<uint16_t>(tail, at + 10);
    uint64_t dir_size = Le<uint32_t>(tail, at + 12);
    uint64_t dir_offset = Le<uint32_t>(tail, at + 16);
    uint64_t dir_end = eocd;
    if (count == 0xFFFF || dir_size == 0xFFFFFFFF || dir_offset == 0xFFFFFFFF) {
      std::string locator, z64;
      if (eocd < 20 || !ReadAt(in, eocd - 20, 20, &locator) ||
          Le<uint32_t>(locator, 0) != 0x07064b50) {
        return Corrupt("the zip64 end-of-central-directory locator is missing");
      }
      const uint64_t z64_at = Le<uint64_t>(locator, 8);
      if (!ReadAt(in, z64_at, 56, &z64) || Le<uint32_t>(z64, 0) != 0x06064b50) {
        return Corrupt("the zip64 end-of-central-directory record is missing");
      }
      count = Le<uint64_t>(z64, 32);
      dir_size = Le<uint64_t>(z64, 40);
      dir_offset = Le<uint64_t>(z64, 48);
      dir_end = z64_at;
    }
    std::string dir;
    if (dir_offset > dir_end || dir_end - dir_offset < dir_size ||
        !ReadAt(in, dir_offset, dir_size, &dir)) {
      return Corrupt("truncated or corrupt (the central directory lies outside the file)");
    }
    size_t p = 0;
    for (uint64_t i = 0; i < count; ++i) {
      if (dir.size() - p < 46 || Le<uint32_t>(dir, p) != 0x02014b50) {
        return Corrupt(absl::StrCat("central directory entry ", i, " is malformed"));
      }
      Entry e;
      e.crc = Le<uint32_t>(dir, p + 16);
      e.size = Le<uint32_t>(dir, p + 24);
      const size_t name_len = Le<uint16_t>(dir, p + 28);
      const size_t extra_len = Le<uint16_t>(dir, p + 30);
      const size_t comment_len = Le<uint16_t>(dir, p + 32);
      if (dir.size() - p - 46 < name_len + extra_len + comment_len) {
        return Corrupt(absl::StrCat("central directory entry ", i, " is malformed"));
      }
      std::string name = dir.substr(p + 46, name_len);
      if (e.size == 0xFFFFFFFF) {  // the real size is in the zip64 extra field (id 1)
        size_t x = p + 46 + name_len;
        const size_t x_end = x + extra_len;
        bool have = false;
        while (x + 4 <= x_end) {
          const uint16_t id = Le<uint16_t>(dir, x), n = Le<uint16_t>(dir, x + 2);
          if (id == 1 && n >= 8 && x + 4 + 8 <= x_end) {
            e.size = Le<uint64_t>(dir, x + 4);
            have = true;
            break;
          }
          x += 4 + n;
        }
        if (!have) return Corrupt(absl::StrCat("record ", name, " lacks its zip64 size"));
      }
      p += 46 + name_len + extra_len + comment_len;
      const size_t slash = name.find('/');
      if (slash != std::string::npos) name = name.substr(slash + 1);
      entries_[name] = e;
    }
    return absl::OkStatus();
  }

  std::string what_;
  std::map<std::string, Entry> entries_;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader_;
};

struct Obj;
using Ref = std::shared_ptr<Obj>;

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

Ref Make(Obj::Kind k) {
  auto o = std::make_shared<Obj>();
  o->kind = k;
  return o;
}

at::ScalarType StorageDtype(const std::string& global) {
  static const std::pair<const char*, at::ScalarType> kTypes[] = {
      {"torch.FloatStorage", at::kFloat},   {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},     {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool}};
  for (const auto& [name, type] : kTypes) {
    if (global == name) return type;
  }
  return at::ScalarType::Undefined;
}

class Machine {
 public:
  Machine(ZipRecords& zip, const std::string& path) : zip_(zip), path_(path) {}

  absl::StatusOr<Ref> Run(const char* data, size_t size) {
    p_ = data;
    end_ = data + size;
    while (p_ < end_) {
      const unsigned char op = static_cast<unsigned char>(*p_++);
      absl::Status s = Step(op);
      CONVNEXTV2_RETURN_IF_ERROR(s);
      if (done_) return stack_.empty() ? Make(Obj::kNone) : stack_.back();
    }
    return Error("ends without STOP");
  }

 private:
  absl::Status Error(absl::string_view what) {
    return absl::DataLossError(absl::StrCat(path_, ": data.pkl ", what));
  }
  bool Need(size_t n) { return static_cast<size_t>(end_ - p_) >= n; }
  template <typename T>
  T Read() {
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string Line() {
    const char* nl = static_cast<const char*>(std::memchr(p_, '\n', end_ - p_));
    if (nl == nullptr) nl = end_;
    std::string s(p_, nl);
    p_ = nl < end_ ? nl + 1 : end_;
    return s;
  }
  Ref Pop() {
    Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  std::vector<Ref> PopToMark() {
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  void PushString(size_t n) {
    Ref o = Make(Obj::kStr);
    o->s.assign(p_, n);
    p_ += n;
    stack_.push_back(o);
  }
  void PushInt(int64_t v) {
    Ref o = Make(Obj::kInt);
    o->i = v;
    stack_.push_back(o);
  }
  Ref Tuple(std::vector<Ref> items) {
    Ref t = Make(Obj::kTuple);
    t->items = std::move(items);
    return t;
  }

  absl::StatusOr<Ref> Call(const Ref& callable, const Ref& args) {
    const std::string& name = callable->s;
    const std::vector<Ref>& a = args->items;
    if (name == "collections.OrderedDict") return Make(Obj::kDict);
    if (name == "torch._utils._rebuild_parameter" && !a.empty()) return a[0];
    if ((name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") &&
        a.size() >= 4 && a[0]->kind == Obj::kTensor) {
      std::vector<int64_t> size, stride;
      for (const Ref& d : a[2]->items) size.push_back(d->i);
      for (const Ref& d : a[3]->items) stride.push_back(d->i);
      Ref t = Make(Obj::kTensor);
      t->tensor = a[0]->tensor.as_strided(size, stride, a[1]->i);
      return t;
    }
    return Make(Obj::kOpaque);  // an object we do not need (argparse.Namespace, ...)
  }

  absl::StatusOr<Ref> Storage(const Ref& pid) {
    const std::vector<Ref>& a = pid->items;
    if (a.size() < 5 || a[0]->s != "storage") return Error("has an unknown persistent id");
    const std::string& key = a[2]->s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dtype = StorageDtype(a[1]->s);
    if (dtype == at::ScalarType::Undefined) {
      return Error(absl::StrCat("has storage type ", a[1]->s, ", which this reader lacks"));
    }
    const std::string record = "data/" + key;
    if (!zip_.Has(record)) return Error(absl::StrCat("refers to missing ", record));
    absl::StatusOr<Record> r = zip_.Get(record);
    CONVNEXTV2_RETURN_IF_ERROR(r);
    const size_t nbytes = r->size;
    const at::DataPtr& data = r->data;
    Ref t = Make(Obj::kTensor);
    const int64_t elem = c10::elementSize(dtype);
    t->tensor = at::empty({static_cast<int64_t>(nbytes) / elem}, at::TensorOptions().dtype(dtype));
    if (nbytes > 0) std::memcpy(t->tensor.data_ptr(), data.get(), nbytes);
    storages_[key] = t;
    return t;
  }

  absl::Status Step(unsigned char op) {
    switch (op) {
      case 0x80: if (!Need(1)) return Error("truncated"); ++p_; return absl::OkStatus();  // PROTO
      case 0x95: if (!Need(8)) return Error("truncated"); p_ += 8; return absl::OkStatus();  // FRAME
      case '.': done_ = true; return absl::OkStatus();
      case '(': marks_.push_back(stack_.size()); return absl::OkStatus();
      case 'N': stack_.push_back(Make(Obj::kNone)); return absl::OkStatus();
      case 0x88: case 0x89: {
        Ref b = Make(Obj::kBool);
        b->i = op == 0x88;
        stack_.push_back(b);
        return absl::OkStatus();
      }
      case 'J': if (!Need(4)) return Error("truncated"); PushInt(Read<int32_t>()); return absl::OkStatus();
      case 'K': if (!Need(1)) return Error("truncated"); PushInt(Read<uint8_t>()); return absl::OkStatus();
      case 'M': if (!Need(2)) return Error("truncated"); PushInt(Read<uint16_t>()); return absl::OkStatus();
      case 0x8a: {  // LONG1: little-endian two's complement
        if (!Need(1)) return Error("truncated");
        const uint8_t n = Read<uint8_t>();
        if (!Need(n) || n > 8) return Error("has an integer wider than 64 bits");
        uint64_t v = 0;
        for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[k])) << (8 * k);
        if (n > 0 && n < 8 && (p_[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);
        p_ += n;
        PushInt(static_cast<int64_t>(v));
        return absl::OkStatus();
      }
      case 'G': {
        if (!Need(8)) return Error("truncated");
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p_[k]);
        p_ += 8;
        Ref f = Make(Obj::kFloat);
        std::memcpy(&f->f, &bits, 8);
        stack_.push_back(f);
        return absl::OkStatus();
      }
      case 'X': case 'T': case 'B': {
        if (!Need(4)) return Error("truncated");
        const uint32_t n = Read<uint32_t>();
        if (!Need(n)) return Error("truncated");
        PushString(n);
        return absl::OkStatus();
      }
      case 0x8c: case 'U': case 'C': {
        if (!Need(1)) return Error("truncated");
        const uint8_t n = Read<uint8_t>();
        if (!Need(n)) return Error("truncated");
        PushString(n);
        return absl::OkStatus();
      }
      case 'c': {
        Ref g = Make(Obj::kGlobal);
        const std::string module = Line();
        g->s = module + "." + Line();
        stack_.push_back(g);
        return absl::OkStatus();
      }
      case 0x93: {  // STACK_GLOBAL
        if (stack_.size() < 2) return Error("is malformed");
        Ref name = Pop(), module = Pop();
        Ref g = Make(Obj::kGlobal);
        g->s = module->s + "." + name->s;
        stack_.push_back(g);
        return absl::OkStatus();
      }
      case 'q': if (!Need(1) || stack_.empty()) return Error("is malformed"); memo_[Read<uint8_t>()] = stack_.back(); return absl::OkStatus();
      case 'r': if (!Need(4) || stack_.empty()) return Error("is malformed"); memo_[Read<uint32_t>()] = stack_.back(); return absl::OkStatus();
      case 0x94: if (stack_.empty()) return Error("is malformed"); memo_[memo_.size()] = stack_.back(); return absl::OkStatus();
      case 'h': case 'j': {
        if (!Need(op == 'h' ? 1 : 4)) return Error("truncated");
        const uint32_t k = op == 'h' ? Read<uint8_t>() : Read<uint32_t>();
        auto it = memo_.find(k);
        if (it == memo_.end()) return Error("refers to a missing memo entry");
        stack_.push_back(it->second);
        return absl::OkStatus();
      }
      case '}': stack_.push_back(Make(Obj::kDict)); return absl::OkStatus();
      case ']': stack_.push_back(Make(Obj::kList)); return absl::OkStatus();
      case ')': stack_.push_back(Make(Obj::kTuple)); return absl::OkStatus();
      case 't': case 'l': {
        if (marks_.empty()) return Error("is malformed");
        Ref r = Tuple(PopToMark());
        if (op == 'l') r->kind = Obj::kList;
        stack_.push_back(r);
        return absl::OkStatus();
      }
      case 0x85: case 0x86: case 0x87: {
        const size_t n = op - 0x84;
        if (stack_.size() < n) return Error("is malformed");
        std::vector<Ref> items(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        stack_.push_back(Tuple(std::move(items)));
        return absl::OkStatus();
      }
      case 'a': {
        if (stack_.size() < 2) return Error("is malformed");
        Ref v = Pop();
        stack_.back()->items.push_back(v);
        return absl::OkStatus();
      }
      case 'e': {
        if (marks_.empty()) return Error("is malformed");
        std::vector<Ref> items = PopToMark();
        if (stack_.empty()) return Error("is malformed");
        for (Ref& v : items) stack_.back()->items.push_back(v);
        return absl::OkStatus();
      }
      case 's': {
        if (stack_.size() < 3) return Error("is malformed");
        Ref v = Pop(), k = Pop();
        stack_.back()->dict.emplace_back(k, v);
        return absl::OkStatus();
      }
      case 'u': case 'd': {
        if (marks_.empty()) return Error("is malformed");
        std::vector<Ref> items = PopToMark();
        if (items.size() % 2) return Error("is malformed");
        if (op == 'd') stack_.push_back(Make(Obj::kDict));
        if (stack_.empty()) return Error("is malformed");
        for (size_t k = 0; k < items.size(); k += 2) {
          stack_.back()->dict.emplace_back(items[k], items[k + 1]);
        }
        return absl::OkStatus();
      }
      case 'R': {
        if (stack_.size() < 2) return Error("is malformed");
        Ref args = Pop(), callable = Pop();
        absl::StatusOr<Ref> r = Call(callable, args);
        CONVNEXTV2_RETURN_IF_ERROR(r);
        stack_.push_back(*r);
        return absl::OkStatus();
      }
      case 0x81: {  // NEWOBJ cls args
        if (stack_.size() < 2) return Error("is malformed");
        Pop();
        Pop();
        stack_.push_back(Make(Obj::kOpaque));
        return absl::OkStatus();
      }
      case 'b': if (stack_.size() < 2) return Error("is malformed"); Pop(); return absl::OkStatus();  // BUILD: state unused
      case 'Q': {
        if (stack_.empty()) return Error("is malformed");
        absl::StatusOr<Ref> s = Storage(Pop());
        CONVNEXTV2_RETURN_IF_ERROR(s);
        stack_.push_back(*s);
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrFormat("uses pickle opcode 0x%02x, which this reader lacks", op));
    }
  }

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
    Machine machine(**zip, what);
    absl::StatusOr<Ref> root =
        machine.Run(static_cast<const char*>(pickle->data.get()), pickle->size);
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
