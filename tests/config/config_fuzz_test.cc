// Mutated configs and command lines through the binaries' own entry (ParseCommandLine, then
// Validate: what `finetune --print_config` runs before printing). Each must be accepted with the
// value it was given, or refused with a message that names the field (or, for a damaged file,
// the file); never a crash, a hang or a value the program reads differently from what was
// written.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "convnextv2/config/command_line.h"
#include "convnextv2/config/config.h"
#include "convnextv2/default_configs.h"
#include "gtest/gtest.h"

namespace convnextv2::config {
namespace {

namespace pb = google::protobuf;

struct Outcome {
  bool ok = false;
  std::string error;
  ExperimentConfig config;
};

Outcome RunArgs(const std::vector<std::string>& args, Mode mode) {
  const std::string name = mode == Mode::kPretrain ? "pretrain" : "finetune";
  const std::string file = name + "_default.pbtxt";
  static std::string texts[2];
  std::string& text = texts[mode == Mode::kPretrain];
  if (text.empty()) text = std::string(EmbeddedConfig(file));
  const std::string shown = "configs/" + file;
  const BuiltinDefault builtin{shown, text};
  std::vector<const char*> argv = {name.c_str()};
  for (const std::string& a : args) argv.push_back(a.c_str());
  Outcome out;
  absl::StatusOr<CommandLine> cl =
      ParseCommandLine(static_cast<int>(argv.size()), argv.data(), mode, builtin);
  if (!cl.ok()) {
    out.error = std::string(cl.status().message());
    return out;
  }
  if (absl::Status s = Validate(cl->config, mode); !s.ok()) {
    out.error = std::string(s.message());
    return out;
  }
  out.ok = true;
  out.config = cl->config;
  return out;
}

// The field at dotted `path` of ExperimentConfig.
const pb::FieldDescriptor* FieldAt(const std::string& path) {
  const pb::Descriptor* d = ExperimentConfig::descriptor();
  const pb::FieldDescriptor* f = nullptr;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (d == nullptr) return nullptr;
    f = d->FindFieldByName(std::string(part));
    if (f == nullptr) return nullptr;
    d = f->message_type();
  }
  return f;
}

// The value of `path` in `config` as text ("" for an unset repeated field).
std::string ValueText(const ExperimentConfig& config, const std::string& path) {
  const pb::Message* m = &config;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const pb::FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts[i]);
    m = &m->GetReflection()->GetMessage(*m, f);
  }
  const pb::FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts.back());
  std::string text;
  if (f->is_repeated()) {
    for (int i = 0; i < m->GetReflection()->FieldSize(*m, f); ++i) {
      std::string one;
      pb::TextFormat::PrintFieldValueToString(*m, f, i, &one);
      absl::StrAppend(&text, i ? "," : "", one);
    }
    return text;
  }
  pb::TextFormat::PrintFieldValueToString(*m, f, -1, &text);
  return text;
}

// Whether `path` is a path field (made absolute by ResolvePaths), asked of ResolvePaths itself.
bool IsPathField(const std::string& path) {
  ExperimentConfig probe;
  if (!SetField(path, "relative_probe", &probe).ok()) return false;
  ResolvePaths("/base", &probe);
  std::string text;
  const pb::Message* m = &probe;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    m = &m->GetReflection()->GetMessage(*m, m->GetDescriptor()->FindFieldByName(parts[i]));
  }
  const pb::FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts.back());
  if (f->is_repeated() || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) return false;
  return m->GetReflection()->GetString(*m, f) == "/base/relative_probe";
}

// Whether an accepted `given` for a scalar field reads back as what it says (so nothing was
// clamped, wrapped, truncated or guessed).
bool ReadsBackAs(const pb::FieldDescriptor* f, const std::string& given, const std::string& got,
                 bool is_path = false) {
  using T = pb::FieldDescriptor;
  const std::string g = absl::AsciiStrToLower(absl::StripAsciiWhitespace(given));
  switch (f->cpp_type()) {
    case T::CPPTYPE_INT32:
    case T::CPPTYPE_INT64: {
      // Text format also takes hex and octal (0x10, 010).
      int64_t a = 0, b = 0;
      return absl::numbers_internal::safe_strto64_base(g, &a, 0) && absl::SimpleAtoi(got, &b) &&
             a == b;
    }
    case T::CPPTYPE_UINT32:
    case T::CPPTYPE_UINT64: {
      uint64_t a = 0, b = 0;
      return absl::numbers_internal::safe_strtou64_base(g, &a, 0) &&
             absl::SimpleAtoi(got, &b) && a == b;
    }
    case T::CPPTYPE_FLOAT:
    case T::CPPTYPE_DOUBLE: {
      double a = 0, b = 0;
      if (!absl::SimpleAtod(g, &a) || !absl::SimpleAtod(got, &b)) return false;
      if (f->cpp_type() == T::CPPTYPE_FLOAT) a = static_cast<float>(a);
      return a == b || (std::isnan(a) && std::isnan(b));
    }
    case T::CPPTYPE_BOOL: {
      const bool t = g == "true" || g == "yes" || g == "1" || g == "t" || g == "y";
      const bool n = g == "false" || g == "no" || g == "0" || g == "f" || g == "n";
      return (t && got == "true") || (n && got == "false");
    }
    case T::CPPTYPE_ENUM: {
      if (absl::AsciiStrToLower(got) == g) return true;
      int64_t number = 0;
      const pb::EnumValueDescriptor* v = f->enum_type()->FindValueByName(got);
      return absl::SimpleAtoi(g, &number) && v != nullptr && v->number() == number;
    }
    case T::CPPTYPE_STRING: {
      std::string unquoted;
      if (!absl::CUnescape(got.substr(1, got.size() - 2), &unquoted)) return false;
      const std::string want(absl::StripAsciiWhitespace(given));
      // Path fields are made absolute against the working directory.
      return unquoted == want || (is_path && !want.empty() && want[0] != '/' &&
                                  !unquoted.empty() && unquoted[0] == '/');
    }
    default:
      return true;
  }
}

std::vector<std::string> BadValues(const pb::FieldDescriptor* f) {
  using T = pb::FieldDescriptor;
  switch (f->cpp_type()) {
    case T::CPPTYPE_INT32:
    case T::CPPTYPE_INT64:
    case T::CPPTYPE_UINT32:
    case T::CPPTYPE_UINT64:
      return {"abc", "", "1.5", "-1", "0", "-2147483649", "99999999999999999999",
              "9223372036854775807", "2147483648", "1e3", "0x10", " 7"};
    case T::CPPTYPE_FLOAT:
    case T::CPPTYPE_DOUBLE:
      return {"abc", "", "-1", "0", "1e999", "-1e999", "nan", "inf", "1e-400", "1,5", "2e", "--3"};
    case T::CPPTYPE_BOOL:
      return {"maybe", "", "2", "TRUE", "yes", "-1", "0.0"};
    case T::CPPTYPE_ENUM:
      return {"BOGUS", "", "-1", "999", "0", "finetune"};
    case T::CPPTYPE_STRING:
      return {"", " ", "nonexistent_value_xyz", "a\tb", "../../..", std::string(300, 'x'), "-1"};
    default:
      return {"x"};
  }
}

std::string Leaf(const std::string& path) { return path.substr(path.rfind('.') + 1); }

bool NamesField(const std::string& error, const std::string& path) {
  return absl::StrContains(error, path) || absl::StrContains(error, Leaf(path));
}

// Every leaf field, with values of the wrong type, out of range, empty, huge and negative,
// through `--set path=value` and through the official `--flag value` form.
TEST(ConfigFuzzTest, EveryFieldWithBadValuesIsAcceptedAsWrittenOrRefusedNamingIt) {
  std::mt19937 rng(11);
  int tried = 0, refused = 0;
  std::vector<std::string> accepted_odd;  // negative, zero, NaN or infinite values accepted
  const auto t0 = std::chrono::steady_clock::now();
  for (Mode mode : {Mode::kFinetune, Mode::kPretrain}) {
    for (const std::string& path : LeafPaths()) {
      const pb::FieldDescriptor* f = FieldAt(path);
      ASSERT_NE(f, nullptr) << path;
      std::vector<std::string> values = BadValues(f);
      std::shuffle(values.begin(), values.end(), rng);
      values.resize(std::min<size_t>(values.size(), 3));
      for (const std::string& v : values) {
        const bool official = (tried % 2 == 1) && CanonicalPath(Leaf(path)).value_or("") == path;
        std::vector<std::string> args =
            official ? std::vector<std::string>{"--" + Leaf(path), v}
                     : std::vector<std::string>{"--set", path + "=" + v};
        const std::string what = absl::StrCat(ModeName(mode), " ", args[0], " ", args[1]);
        const auto c0 = std::chrono::steady_clock::now();
        Outcome out = RunArgs(args, mode);
        EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count(),
                  2.0)
            << what;
        ++tried;
        if (!out.ok) {
          ++refused;
          EXPECT_TRUE(NamesField(out.error, path)) << what << ": the error does not name "
                                                   << path << ": " << out.error;
          continue;
        }
        if (f->is_repeated() || f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
        const std::string got = ValueText(out.config, path);
        EXPECT_TRUE(ReadsBackAs(f, v, got, IsPathField(path)))
            << what << ": accepted, but the config holds " << got;
        double d = 0;
        if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING && absl::SimpleAtod(v, &d) &&
            (d <= 0 || !std::isfinite(d))) {
          accepted_odd.push_back(what);
        }
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d mutated command lines: %d refused naming the field, %d accepted as written "
              "(%.2f s)\n",
              tried, refused, tried - refused, seconds);
  std::printf("accepted zero, negative, NaN or infinite values (%zu):\n", accepted_odd.size());
  for (const std::string& a : accepted_odd) std::printf("  %s\n", a.c_str());
  EXPECT_GE(tried, 300);
}

TEST(ConfigFuzzTest, MalformedCommandLinesAreRefusedNamingTheArgument) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--bogus_flag", "3"}, "bogus_flag"},
      {{"--set", "optim.bogus=1"}, "optim.bogus"},
      {{"--set", "optim.lr"}, "optim.lr"},
      {{"--set"}, "--set"},
      {{"--set", "=3"}, "=3"},
      {{"--lr"}, "lr"},
      {{"--config=/nonexistent/x.pbtxt"}, "/nonexistent/x.pbtxt"},
      {{"--set", "model.model=convnextv2_nope"}, "convnextv2_nope"},
      {{"--epochs", "1", "--epochs"}, "epochs"},
      {{"--batch_size", "--lr", "1e-3"}, "batch_size"},
      {{"--set", "train.batch_size=0"}, "batch_size"},
      {{"--set", "train.batch_size=-4"}, "batch_size"},
      {{"--set", "train.epochs=-1"}, "epochs"},
      {{"--set", "optim.lr=nan"}, "lr"},
      {{"--set", "optim.blr=-1"}, "blr"},
      {{"--set", "model.input_size=0"}, "input_size"},
      {{"--set", "data.corrupt_images=sometimes"}, "corrupt_images"},
  };
  for (Mode mode : {Mode::kFinetune, Mode::kPretrain}) {
    for (const auto& [args, named] : cases) {
      Outcome out = RunArgs(args, mode);
      const std::string what = absl::StrCat(ModeName(mode), ": ", absl::StrJoin(args, " "));
      ASSERT_FALSE(out.ok) << what << " was accepted";
      EXPECT_TRUE(absl::StrContains(out.error, named)) << what << ": " << out.error;
    }
  }
}

std::string ReadRunfile(const std::string& rel) {
  const std::string path =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"), "/", rel);
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text;
}

// Mutations of the shipped .pbtxt files: values replaced by bad ones, keys renamed, lines
// duplicated or cut, bytes inserted, the file truncated.
TEST(ConfigFuzzTest, MutatedConfigFilesAreAcceptedOrRefusedNamingTheFileOrField) {
  std::mt19937 rng(29);
  const std::string dir = std::getenv("TEST_TMPDIR");
  int tried = 0, refused = 0;
  for (const std::string& name : {std::string("finetune_default"), std::string("pretrain_default")}) {
    const Mode mode = name == "pretrain_default" ? Mode::kPretrain : Mode::kFinetune;
    const std::string text = ReadRunfile("configs/" + name + ".pbtxt");
    ASSERT_FALSE(text.empty()) << name;
    std::vector<std::string> lines = absl::StrSplit(text, '\n');
    // (line index, dotted path) of every "key: value" line.
    std::vector<std::pair<size_t, std::string>> scalars;
    std::vector<std::string> stack;
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string uncommented = lines[i].substr(0, lines[i].find('#'));
      absl::string_view l = absl::StripAsciiWhitespace(uncommented);
      if (absl::EndsWith(l, "{")) {
        stack.push_back(std::string(absl::StripAsciiWhitespace(l.substr(0, l.size() - 1))));
      } else if (l == "}") {
        stack.pop_back();
      } else if (const size_t colon = l.find(':'); colon != absl::string_view::npos) {
        std::string path = absl::StrJoin(stack, ".");
        absl::StrAppend(&path, stack.empty() ? "" : ".", l.substr(0, colon));
        scalars.emplace_back(i, path);
      }
    }
    ASSERT_GT(scalars.size(), 10u) << name;
    for (int k = 0; k < 150; ++k) {
      std::vector<std::string> m = lines;
      const auto& [line, path] = scalars[rng() % scalars.size()];
      const pb::FieldDescriptor* f = FieldAt(path);
      ASSERT_NE(f, nullptr) << path;
      std::string mutated_value;
      const int op = k % 6;
      const size_t colon = m[line].find(':');
      if (op == 0 || op == 1) {  // a bad value, quoted or not as the type wants
        std::vector<std::string> values = BadValues(f);
        mutated_value = values[rng() % values.size()];
        const bool quote = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_STRING || op == 1;
        m[line] = absl::StrCat(m[line].substr(0, colon + 1), " ",
                               quote ? absl::StrCat("\"", absl::CEscape(mutated_value), "\"")
                                     : mutated_value);
      } else if (op == 2) {  // an unknown key
        m[line].insert(colon, "_bogus");
      } else if (op == 3) {  // the line twice
        m.insert(m.begin() + line, m[line]);
      }
      std::string mutated = absl::StrJoin(m, "\n");
      if (op == 4) mutated = mutated.substr(0, rng() % mutated.size());
      if (op == 5) mutated.insert(rng() % mutated.size(), 1, "{}:\"#\\x\x01"[rng() % 8]);
      const std::string file = absl::StrCat(dir, "/", name, "_", k, ".pbtxt");
      std::ofstream(file, std::ios::trunc) << mutated;
      Outcome out = RunArgs({"--config=" + file}, mode);
      ++tried;
      const std::string what = absl::StrCat(file, " (op ", op, " on line ", line + 1, ", ", path,
                                            " = '", mutated_value, "')");
      if (!out.ok) {
        ++refused;
        EXPECT_TRUE(absl::StrContains(out.error, file) || NamesField(out.error, path) ||
                    op >= 4)
            << what << ": " << out.error;
        if (op == 2 || op >= 4) {
          // A damaged file is named with its line (parse errors), or the field is (validation).
          EXPECT_TRUE(absl::StrContains(out.error, file) || absl::StrContains(out.error, "."))
              << what << ": " << out.error;
        }
        continue;
      }
      EXPECT_NE(op, 2) << what << ": an unknown field was accepted";
      if (op <= 1) {
        EXPECT_TRUE(ReadsBackAs(f, mutated_value, ValueText(out.config, path), IsPathField(path)))
            << what << ": accepted, but the config holds " << ValueText(out.config, path);
      }
    }
  }
  std::printf("%d mutated config files: %d refused, %d accepted as written\n", tried, refused,
              tried - refused);
}

}  // namespace
}  // namespace convnextv2::config
