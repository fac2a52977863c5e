// Small file helpers shared by the packages that write run outputs.
//
//   absl::Status s = WriteFileAtomically("/run/config.pbtxt", text);
#ifndef CONVNEXTV2_UTIL_FILES_H_
#define CONVNEXTV2_UTIL_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::util {

// Writes `contents` to a temporary file beside `path`, fsyncs it, renames it over `path` and
// fsyncs the directory: a crash at any instant leaves either the old file or the new one.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// Appends `line` and a newline to `path`, creating it, and flushes to the OS.
absl::Status AppendLine(const std::string& path, absl::string_view line);

// Creates `dir` and its parents; an error names the directory and the reason.
absl::Status MakeDirs(const std::string& dir);

absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_FILES_H_
