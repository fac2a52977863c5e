// Progress of long phases where a person waits: the launcher reading hundreds of tasks
// (`status`, `report`) and rerunning one (`reproduce`), the training binaries indexing a large
// image folder and writing pre-training's pictures and weights. On stderr, so that stdout keeps
// only the result.
//
//   Progress p("status: reading tasks", manifest.tasks_size());
//   for (...) { ...; p.Update(++done); }
//   p.Finish();
//
// On a terminal one line is rewritten in place ("\r") every `tty_interval` seconds; in a file or
// a pipe (a Slurm log) there is no carriage return: a whole new line every `interval` seconds.
// Either way the first line comes only after the first interval, and Finish() prints a last one
// only when an earlier one was printed, so quick phases stay silent. A line:
//   status: reading tasks 120/400 (30%), 12s, ETA 28s
#ifndef CONVNEXTV2_UTIL_PROGRESS_H_
#define CONVNEXTV2_UTIL_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"

namespace convnextv2::util {

class Progress {
 public:
  struct Options {
    std::FILE* out = stderr;
    // Whether `out` is a terminal; unset: isatty().
    int terminal = -1;
    double interval = 10;        // seconds between lines in a file or pipe
    double tty_interval = 0.2;   // seconds between redraws on a terminal
    std::function<double()> clock;  // seconds; unset: a monotonic clock
  };

  // `total` <= 0: the amount is unknown (no percentage or ETA).
  Progress(std::string what, int64_t total, Options options);
  Progress(std::string what, int64_t total) : Progress(std::move(what), total, Options()) {}
  ~Progress();  // finishes if Finish() was not called

  // `done` of `total`; `detail` ("epoch 3/10") is appended to the line.
  void Update(int64_t done, absl::string_view detail = "");
  // Once the amount becomes known (e.g. from the first progress line of a child process).
  void SetTotal(int64_t total) { total_ = total; }
  // The last line ("400/400 (100%), 42s"), when earlier lines were printed.
  void Finish(absl::string_view detail = "");

  // The line for `done` after `elapsed` seconds (exposed for tests).
  std::string Line(int64_t done, double elapsed, absl::string_view detail) const;

 private:
  void Print(const std::string& line, bool final);

  std::string what_;
  int64_t total_;
  Options options_;
  bool terminal_;
  double start_;
  double last_print_;
  bool printed_ = false;
  std::string last_line_;
  int64_t done_ = 0;
  std::string detail_;
  bool finished_ = false;
  size_t last_width_ = 0;
};

// "45s", "3m05s", "2h07m".
std::string FormatSeconds(double seconds);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_PROGRESS_H_
