#include "convnextv2/record/log_txt.h"

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace convnextv2::record {
namespace {

using Json = nlohmann::ordered_json;

// The number as the format prints it, as a JSON value that dumps to the same digits
// (nlohmann prints the shortest text that reads back as the same double).
Json Number(double value, const std::string& format) {
  if (!std::isfinite(value)) return Json(nullptr);
  std::string text;
  if (format == "%d") {
    text = absl::StrCat(static_cast<int64_t>(value));
  } else if (!absl::FormatUntyped(&text, absl::UntypedFormatSpec(format),
                                  {absl::FormatArg(value)})) {
    text = absl::StrFormat("%.17g", value);
  }
  int64_t i = 0;
  if (text.find_first_of(".eEnN") == std::string::npos && absl::SimpleAtoi(text, &i)) {
    return Json(i);
  }
  double d = value;
  if (!absl::SimpleAtod(text, &d)) d = value;
  return Json(d);
}

std::string Dump(const Json& object) {
  std::string line = "{";
  bool first = true;
  for (const auto& [key, value] : object.items()) {
    absl::StrAppend(&line, first ? "" : ", ", Json(key).dump(), ": ", value.dump());
    first = false;
  }
  return line + "}";
}

}  // namespace

std::string LogTxtLine(const std::vector<LogEntry>& entries) {
  Json object = Json::object();
  for (const LogEntry& e : entries) object[e.key] = Number(e.value, e.format);
  return Dump(object);
}

absl::StatusOr<std::string> WithoutKeys(absl::string_view text,
                                        const std::vector<std::string>& keys) {
  std::string out;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++n;
    Json object = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", n, " is not a JSON object: ", line.substr(0, 80)));
    }
    for (const std::string& k : keys) object.erase(k);
    absl::StrAppend(&out, Dump(object), "\n");
  }
  return out;
}

}  // namespace convnextv2::record
