#include "convnextv2/checkpoint/torch_zip.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <memory>
#include <unordered_map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace convnextv2::checkpoint {
namespace {

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
  Machine(caffe2::serialize::PyTorchStreamReader& zip, const std::string& path)
      : zip_(zip), path_(path) {}

  absl::StatusOr<Ref> Run(const char* data, size_t size) {
    p_ = data;
    end_ = data + size;
    while (p_ < end_) {
      const unsigned char op = static_cast<unsigned char>(*p_++);
      absl::Status s = Step(op);
      if (!s.ok()) return s;
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
    if (!zip_.hasRecord(record)) return Error(absl::StrCat("refers to missing ", record));
    auto [data, nbytes] = zip_.getRecord(record);
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
        if (!r.ok()) return r.status();
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
        if (!s.ok()) return s.status();
        stack_.push_back(*s);
        return absl::OkStatus();
      }
      default:
        return Error(absl::StrFormat("uses pickle opcode 0x%02x, which this reader lacks", op));
    }
  }

  caffe2::serialize::PyTorchStreamReader& zip_;
  std::string path_;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  bool done_ = false;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, Ref> memo_;
  std::unordered_map<std::string, Ref> storages_;
};

}  // namespace

absl::StatusOr<TorchZipDict> ReadTorchZip(const std::string& path) {
  try {
    caffe2::serialize::PyTorchStreamReader zip(path);
    if (!zip.hasRecord("data.pkl")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is a zip file without data.pkl: not written by torch.save"));
    }
    auto [data, size] = zip.getRecord("data.pkl");
    Machine machine(zip, path);
    absl::StatusOr<Ref> root = machine.Run(static_cast<const char*>(data.get()), size);
    if (!root.ok()) return root.status();
    if ((*root)->kind != Obj::kDict) {
      return absl::InvalidArgumentError(absl::StrCat(path, " holds no dict at the top level"));
    }
    TorchZipDict out;
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
    return out;
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " cannot be read as a torch.save zip file: ", e.what_without_backtrace()));
  }
}

}  // namespace convnextv2::checkpoint
