// output_dir/log.txt, the official per-epoch log: one JSON object per line, keys in the order
// given, each number printed with its declared format (as the official script's json.dumps
// of its figures, e.g. "%.10g" of an lr), written with nlohmann/json (keys escaped, Python's
// ", " and ": " separators). No libtorch.
//
//   std::string line = record::LogTxtLine({{"train_lr", 1e-4, "%.10g"}, {"epoch", 0, "%d"}});
//   // {"train_lr": 0.0001, "epoch": 0}
#ifndef CONVNEXTV2_RECORD_LOG_TXT_H_
#define CONVNEXTV2_RECORD_LOG_TXT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::record {

struct LogEntry {
  std::string key;
  double value = 0;
  std::string format = "%.10g";  // a printf conversion of a double; "%d" for an integer
};

// The line without its newline. A value printed without a fraction or exponent is a JSON
// integer, as Python prints an int; NaN and infinities become null.
std::string LogTxtLine(const std::vector<LogEntry>& entries);

// `text` (lines of log.txt) with `keys` removed from every object, each line written again as
// LogTxtLine writes it; an error names the line that is not a JSON object.
absl::StatusOr<std::string> WithoutKeys(absl::string_view text,
                                        const std::vector<std::string>& keys);

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_LOG_TXT_H_
