#include "convnextv2/checkpoint/unpickler.h"

#include <ATen/ATen.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

// The opcodes this machine runs, named as Python's pickle.py names them.
namespace opcode {
constexpr unsigned char kMark = '(';
constexpr unsigned char kStop = '.';
constexpr unsigned char kBinFloat = 'G';
constexpr unsigned char kBinInt = 'J';
constexpr unsigned char kBinInt1 = 'K';
constexpr unsigned char kBinInt2 = 'M';
constexpr unsigned char kNone = 'N';
constexpr unsigned char kBinPersId = 'Q';
constexpr unsigned char kReduce = 'R';
constexpr unsigned char kBinString = 'T';
constexpr unsigned char kShortBinString = 'U';
constexpr unsigned char kBinUnicode = 'X';
constexpr unsigned char kAppend = 'a';
constexpr unsigned char kBuild = 'b';
constexpr unsigned char kGlobal = 'c';
constexpr unsigned char kDict = 'd';
constexpr unsigned char kEmptyDict = '}';
constexpr unsigned char kAppends = 'e';
constexpr unsigned char kBinGet = 'h';
constexpr unsigned char kLongBinGet = 'j';
constexpr unsigned char kList = 'l';
constexpr unsigned char kEmptyList = ']';
constexpr unsigned char kBinPut = 'q';
constexpr unsigned char kLongBinPut = 'r';
constexpr unsigned char kSetItem = 's';
constexpr unsigned char kTuple = 't';
constexpr unsigned char kEmptyTuple = ')';
constexpr unsigned char kSetItems = 'u';
// Protocol 2.
constexpr unsigned char kProto = 0x80;
constexpr unsigned char kNewObj = 0x81;
constexpr unsigned char kTuple1 = 0x85;
constexpr unsigned char kTuple2 = 0x86;
constexpr unsigned char kTuple3 = 0x87;
constexpr unsigned char kNewTrue = 0x88;
constexpr unsigned char kNewFalse = 0x89;
constexpr unsigned char kLong1 = 0x8a;
// Protocol 3.
constexpr unsigned char kBinBytes = 'B';
constexpr unsigned char kShortBinBytes = 'C';
// Protocol 4.
constexpr unsigned char kShortBinUnicode = 0x8c;
constexpr unsigned char kStackGlobal = 0x93;
constexpr unsigned char kMemoize = 0x94;
constexpr unsigned char kFrame = 0x95;
}  // namespace opcode

Ref Make(Obj::Kind k) {
  auto o = std::make_shared<Obj>();
  o->kind = k;
  return o;
}

Ref Tuple(std::vector<Ref> items) {
  Ref t = Make(Obj::kTuple);
  t->items = std::move(items);
  return t;
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

}  // namespace

absl::StatusOr<Ref> Unpickler::Run(const char* data, size_t size) {
  p_ = data;
  end_ = data + size;
  while (p_ < end_) {
    const unsigned char op = static_cast<unsigned char>(*p_++);
    CONVNEXTV2_RETURN_IF_ERROR(Step(op));
    if (done_) return stack_.empty() ? Make(Obj::kNone) : stack_.back();
  }
  return Error("ends without STOP");
}

absl::Status Unpickler::Step(unsigned char op) {
  namespace o = opcode;
  switch (op) {
    case o::kProto: case o::kFrame: case o::kStop: case o::kMark:
      return Framing(op);
    case o::kNone: case o::kNewTrue: case o::kNewFalse:
    case o::kBinInt: case o::kBinInt1: case o::kBinInt2:
      return PushNumber(op);
    case o::kLong1:
      return PushLong1();
    case o::kBinFloat:
      return PushBinFloat();
    case o::kBinUnicode: case o::kBinString: case o::kBinBytes:
    case o::kShortBinUnicode: case o::kShortBinString: case o::kShortBinBytes:
      return PushString(op);
    case o::kGlobal: case o::kStackGlobal:
      return PushGlobal(op);
    case o::kBinPut: case o::kLongBinPut: case o::kMemoize: case o::kBinGet: case o::kLongBinGet:
      return Memo(op);
    case o::kEmptyDict: case o::kEmptyList: case o::kEmptyTuple:
      return PushEmpty(op);
    case o::kTuple: case o::kList: case o::kTuple1: case o::kTuple2: case o::kTuple3:
      return MakeSequence(op);
    case o::kAppend: case o::kAppends:
      return Append(op);
    case o::kSetItem: case o::kSetItems: case o::kDict:
      return SetItems(op);
    case o::kReduce: case o::kNewObj: case o::kBuild: case o::kBinPersId:
      return Apply(op);
    default:
      return Error(absl::StrFormat("uses pickle opcode 0x%02x, which this reader lacks", op));
  }
}

absl::Status Unpickler::Error(absl::string_view what) const {
  return absl::DataLossError(absl::StrCat(path_, ": data.pkl ", what));
}

template <typename T>
T Unpickler::Read() {
  T v;
  std::memcpy(&v, p_, sizeof(T));
  p_ += sizeof(T);
  return v;
}

std::string Unpickler::Line() {
  const char* nl = static_cast<const char*>(std::memchr(p_, '\n', end_ - p_));
  if (nl == nullptr) nl = end_;
  std::string s(p_, nl);
  p_ = nl < end_ ? nl + 1 : end_;
  return s;
}

Ref Unpickler::Pop() {
  Ref r = stack_.back();
  stack_.pop_back();
  return r;
}

std::vector<Ref> Unpickler::PopToMark() {
  const size_t m = marks_.back();
  marks_.pop_back();
  std::vector<Ref> out(stack_.begin() + m, stack_.end());
  stack_.resize(m);
  return out;
}

void Unpickler::PushBytes(size_t n) {
  Ref o = Make(Obj::kStr);
  o->s.assign(p_, n);
  p_ += n;
  stack_.push_back(o);
}

void Unpickler::PushInt(int64_t v) {
  Ref o = Make(Obj::kInt);
  o->i = v;
  stack_.push_back(o);
}

absl::Status Unpickler::Framing(unsigned char op) {
  switch (op) {
    case opcode::kProto:  // the protocol number
      if (!Need(1)) return Error("truncated");
      ++p_;
      break;
    case opcode::kFrame:  // the frame's length: frames are not needed to read a whole pickle
      if (!Need(8)) return Error("truncated");
      p_ += 8;
      break;
    case opcode::kStop:
      done_ = true;
      break;
    default:  // kMark
      marks_.push_back(stack_.size());
  }
  return absl::OkStatus();
}

absl::Status Unpickler::PushNumber(unsigned char op) {
  switch (op) {
    case opcode::kNone:
      stack_.push_back(Make(Obj::kNone));
      return absl::OkStatus();
    case opcode::kNewTrue: case opcode::kNewFalse: {
      Ref b = Make(Obj::kBool);
      b->i = op == opcode::kNewTrue;
      stack_.push_back(b);
      return absl::OkStatus();
    }
    case opcode::kBinInt:
      if (!Need(4)) return Error("truncated");
      PushInt(Read<int32_t>());
      return absl::OkStatus();
    case opcode::kBinInt1:
      if (!Need(1)) return Error("truncated");
      PushInt(Read<uint8_t>());
      return absl::OkStatus();
    default:  // kBinInt2
      if (!Need(2)) return Error("truncated");
      PushInt(Read<uint16_t>());
      return absl::OkStatus();
  }
}

// LONG1: a length byte, then that many bytes of little-endian two's complement.
absl::Status Unpickler::PushLong1() {
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

// BINFLOAT: a big-endian IEEE double.
absl::Status Unpickler::PushBinFloat() {
  if (!Need(8)) return Error("truncated");
  uint64_t bits = 0;
  for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p_[k]);
  p_ += 8;
  Ref f = Make(Obj::kFloat);
  std::memcpy(&f->f, &bits, 8);
  stack_.push_back(f);
  return absl::OkStatus();
}

// str, bytes and Python 2 strings alike, with a 4-byte or (SHORT_*) a 1-byte length.
absl::Status Unpickler::PushString(unsigned char op) {
  const bool short_length = op == opcode::kShortBinUnicode || op == opcode::kShortBinString ||
                            op == opcode::kShortBinBytes;
  if (!Need(short_length ? 1 : 4)) return Error("truncated");
  const uint32_t n = short_length ? Read<uint8_t>() : Read<uint32_t>();
  if (!Need(n)) return Error("truncated");
  PushBytes(n);
  return absl::OkStatus();
}

absl::Status Unpickler::PushGlobal(unsigned char op) {
  Ref g = Make(Obj::kGlobal);
  if (op == opcode::kGlobal) {  // "module\nname\n"
    const std::string module = Line();
    g->s = module + "." + Line();
  } else {  // kStackGlobal: module and name from the stack
    if (stack_.size() < 2) return Error("is malformed");
    Ref name = Pop(), module = Pop();
    g->s = module->s + "." + name->s;
  }
  stack_.push_back(g);
  return absl::OkStatus();
}

absl::Status Unpickler::Memo(unsigned char op) {
  switch (op) {
    case opcode::kBinPut:
      if (!Need(1) || stack_.empty()) return Error("is malformed");
      memo_[Read<uint8_t>()] = stack_.back();
      return absl::OkStatus();
    case opcode::kLongBinPut:
      if (!Need(4) || stack_.empty()) return Error("is malformed");
      memo_[Read<uint32_t>()] = stack_.back();
      return absl::OkStatus();
    case opcode::kMemoize:
      if (stack_.empty()) return Error("is malformed");
      memo_[memo_.size()] = stack_.back();
      return absl::OkStatus();
    default: {  // kBinGet, kLongBinGet
      const bool one_byte = op == opcode::kBinGet;
      if (!Need(one_byte ? 1 : 4)) return Error("truncated");
      const uint32_t k = one_byte ? Read<uint8_t>() : Read<uint32_t>();
      auto it = memo_.find(k);
      if (it == memo_.end()) return Error("refers to a missing memo entry");
      stack_.push_back(it->second);
      return absl::OkStatus();
    }
  }
}

absl::Status Unpickler::PushEmpty(unsigned char op) {
  stack_.push_back(Make(op == opcode::kEmptyDict   ? Obj::kDict
                        : op == opcode::kEmptyList ? Obj::kList
                                                   : Obj::kTuple));
  return absl::OkStatus();
}

// TUPLE and LIST from the items above the mark; TUPLE1-3 from the top one to three.
absl::Status Unpickler::MakeSequence(unsigned char op) {
  if (op == opcode::kTuple || op == opcode::kList) {
    if (marks_.empty()) return Error("is malformed");
    Ref r = Tuple(PopToMark());
    if (op == opcode::kList) r->kind = Obj::kList;
    stack_.push_back(r);
    return absl::OkStatus();
  }
  const size_t n = op - opcode::kTuple1 + 1;
  if (stack_.size() < n) return Error("is malformed");
  std::vector<Ref> items(stack_.end() - n, stack_.end());
  stack_.resize(stack_.size() - n);
  stack_.push_back(Tuple(std::move(items)));
  return absl::OkStatus();
}

absl::Status Unpickler::Append(unsigned char op) {
  if (op == opcode::kAppend) {
    if (stack_.size() < 2) return Error("is malformed");
    Ref v = Pop();
    stack_.back()->items.push_back(v);
    return absl::OkStatus();
  }
  if (marks_.empty()) return Error("is malformed");  // kAppends
  std::vector<Ref> items = PopToMark();
  if (stack_.empty()) return Error("is malformed");
  for (Ref& v : items) stack_.back()->items.push_back(v);
  return absl::OkStatus();
}

// SETITEM: one key and value into the dict below them; SETITEMS: the pairs above the mark;
// DICT: a new dict of the pairs above the mark.
absl::Status Unpickler::SetItems(unsigned char op) {
  if (op == opcode::kSetItem) {
    if (stack_.size() < 3) return Error("is malformed");
    Ref v = Pop(), k = Pop();
    stack_.back()->dict.emplace_back(k, v);
    return absl::OkStatus();
  }
  if (marks_.empty()) return Error("is malformed");
  std::vector<Ref> items = PopToMark();
  if (items.size() % 2) return Error("is malformed");
  if (op == opcode::kDict) stack_.push_back(Make(Obj::kDict));
  if (stack_.empty()) return Error("is malformed");
  for (size_t k = 0; k < items.size(); k += 2) {
    stack_.back()->dict.emplace_back(items[k], items[k + 1]);
  }
  return absl::OkStatus();
}

// Calls and objects: REDUCE, NEWOBJ (cls args: opaque), BUILD (its state is not used) and
// BINPERSID (a storage).
absl::Status Unpickler::Apply(unsigned char op) {
  if (op == opcode::kBinPersId) {
    if (stack_.empty()) return Error("is malformed");
    absl::StatusOr<Ref> s = Storage(Pop());
    CONVNEXTV2_RETURN_IF_ERROR(s);
    stack_.push_back(*s);
    return absl::OkStatus();
  }
  if (stack_.size() < 2) return Error("is malformed");
  if (op == opcode::kBuild) {
    Pop();
    return absl::OkStatus();
  }
  if (op == opcode::kNewObj) {
    Pop();
    Pop();
    stack_.push_back(Make(Obj::kOpaque));
    return absl::OkStatus();
  }
  Ref args = Pop(), callable = Pop();  // kReduce
  absl::StatusOr<Ref> r = Call(callable, args);
  CONVNEXTV2_RETURN_IF_ERROR(r);
  stack_.push_back(*r);
  return absl::OkStatus();
}

absl::StatusOr<Ref> Unpickler::Call(const Ref& callable, const Ref& args) {
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

// ('storage', storage type, key, location, size): the record data/<key>, read once.
absl::StatusOr<Ref> Unpickler::Storage(const Ref& pid) {
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
  Ref t = Make(Obj::kTensor);
  const int64_t elem = c10::elementSize(dtype);
  t->tensor = at::empty({static_cast<int64_t>(nbytes) / elem}, at::TensorOptions().dtype(dtype));
  if (nbytes > 0) std::memcpy(t->tensor.data_ptr(), r->data.get(), nbytes);
  storages_[key] = t;
  return t;
}

}  // namespace convnextv2::checkpoint
