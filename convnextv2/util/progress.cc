#include "convnextv2/util/progress.h"

#include <unistd.h>

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace convnextv2::util {
namespace {

double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string FormatSeconds(double seconds) {
  const int64_t s = static_cast<int64_t>(std::lround(std::max(seconds, 0.0)));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

Progress::Progress(std::string what, int64_t total, Options options)
    : what_(std::move(what)), total_(total), options_(std::move(options)) {
  if (!options_.clock) options_.clock = MonotonicSeconds;
  terminal_ = options_.terminal >= 0 ? options_.terminal != 0
                                     : isatty(fileno(options_.out)) == 1;
  start_ = last_print_ = options_.clock();
}

Progress::~Progress() {
  if (!finished_) Finish();
}

std::string Progress::Line(int64_t done, double elapsed, absl::string_view detail) const {
  std::string line = what_;
  if (total_ > 0) {
    absl::StrAppendFormat(&line, " %d/%d (%d%%), %s", done, total_,
                          static_cast<int>(100.0 * done / total_), FormatSeconds(elapsed));
    if (done > 0 && done < total_) {
      absl::StrAppend(&line, ", ETA ", FormatSeconds(elapsed / done * (total_ - done)));
    }
  } else {
    absl::StrAppend(&line, " ", done, ", ", FormatSeconds(elapsed));
  }
  if (!detail.empty()) absl::StrAppend(&line, ", ", detail);
  return line;
}

void Progress::Update(int64_t done, absl::string_view detail) {
  done_ = done;
  detail_ = std::string(detail);
  const double now = options_.clock();
  if (now - last_print_ < (terminal_ ? options_.tty_interval : options_.interval)) return;
  last_print_ = now;
  Print(Line(done, now - start_, detail), /*final=*/false);
}

void Progress::Finish(absl::string_view detail) {
  if (finished_) return;
  finished_ = true;
  if (!printed_) return;
  const std::string line =
      Line(done_, options_.clock() - start_, detail.empty() ? absl::string_view(detail_) : detail);
  if (!terminal_ && line == last_line_) return;  // the log already ends with it
  Print(line, /*final=*/true);
}

void Progress::Print(const std::string& line, bool final) {
  printed_ = true;
  last_line_ = line;
  if (terminal_) {
    // Rewrite the line in place; pad over what a longer previous line left.
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(options_.out, "\r%s%s%s", line.c_str(), std::string(pad, ' ').c_str(),
                 final ? "\n" : "");
    last_width_ = line.size();
  } else {
    std::fprintf(options_.out, "%s\n", line.c_str());
  }
  std::fflush(options_.out);
}

}  // namespace convnextv2::util
