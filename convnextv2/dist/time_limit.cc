#include "convnextv2/dist/time_limit.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convnextv2/util/shell.h"

namespace convnextv2::dist {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

bool ParseNumbers(absl::string_view text, std::vector<int64_t>* out) {
  for (absl::string_view part : absl::StrSplit(text, ':')) {
    int64_t v;
    if (part.empty() || !absl::SimpleAtoi(part, &v) || v < 0) return false;
    out->push_back(v);
  }
  return !out->empty() && out->size() <= 3;
}

}  // namespace

absl::StatusOr<std::optional<int64_t>> ParseSlurmTime(absl::string_view text) {
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  const std::string upper = absl::AsciiStrToUpper(t);
  if (upper == "UNLIMITED" || upper == "INFINITE" || upper == "NOT_SET") {
    return std::optional<int64_t>();
  }
  const absl::Status bad = absl::InvalidArgumentError(absl::StrCat(
      "'", t, "' is not a Slurm time (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED)"));
  int64_t days = 0;
  absl::string_view clock = t;
  std::vector<int64_t> n;
  if (const size_t dash = t.find('-'); dash != absl::string_view::npos) {
    if (!absl::SimpleAtoi(t.substr(0, dash), &days) || days < 0) return bad;
    clock = t.substr(dash + 1);
    // After "D-" the first number is hours: D-HH, D-HH:MM, D-HH:MM:SS.
    if (!ParseNumbers(clock, &n)) return bad;
    while (n.size() < 3) n.push_back(0);
  } else {
    // Without days: MM, MM:SS, HH:MM:SS.
    if (!ParseNumbers(clock, &n)) return bad;
    if (n.size() == 1) n = {0, n[0], 0};
    if (n.size() == 2) n = {0, n[0], n[1]};
  }
  return std::optional<int64_t>(((days * 24 + n[0]) * 60 + n[1]) * 60 + n[2]);
}

std::string SlurmJobSpec() {
  const std::string array_job = Env("SLURM_ARRAY_JOB_ID");
  const std::string array_task = Env("SLURM_ARRAY_TASK_ID");
  if (!array_job.empty() && !array_task.empty()) return absl::StrCat(array_job, "_", array_task);
  return Env("SLURM_JOB_ID");
}

TimeLimit::TimeLimit(Clock::time_point deadline, int64_t lead_seconds, std::string description)
    : deadline_(deadline), lead_seconds_(lead_seconds), description_(std::move(description)) {}

TimeLimit TimeLimit::FromSlurm(int64_t lead_seconds) {
  TimeLimit none;
  none.lead_seconds_ = lead_seconds;
  if (lead_seconds <= 0) {
    none.description_ = "time limit not watched (preempt_lead_seconds 0)";
    return none;
  }
  const std::string job = SlurmJobSpec();
  if (job.empty()) {
    none.description_ = "time limit not watched (not a Slurm job)";
    return none;
  }
  const Clock::time_point asked = Clock::now();
  std::string out;
  const std::string command =
      absl::StrCat("squeue -h -j ", util::ShellQuote(job), " -o %L 2>/dev/null");
  const int rc = util::RunShell(command, &out);
  // One line per job; an array spec names exactly one task.
  const std::string line(absl::StripAsciiWhitespace(
      std::vector<std::string>(absl::StrSplit(out, '\n'))[0]));
  absl::StatusOr<std::optional<int64_t>> left = ParseSlurmTime(line);
  if (rc != 0 || !left.ok()) {
    none.description_ = absl::StrCat("time limit of job ", job, " unknown (`", command,
                                     "` exited ", rc, " printing '", line, "'): not watched");
    return none;
  }
  if (!left->has_value()) {
    none.description_ = absl::StrCat("job ", job, " has no time limit");
    return none;
  }
  return TimeLimit(asked + std::chrono::seconds(**left), lead_seconds,
                   absl::StrCat("job ", job, ": ", **left, " s left; the run saves and exits 75 "
                                "when less than ", lead_seconds, " s are left"));
}

bool TimeLimit::Near(Clock::time_point now) const {
  return deadline_.has_value() && *deadline_ - now < std::chrono::seconds(lead_seconds_);
}

int64_t TimeLimit::SecondsLeft(Clock::time_point now) const {
  if (!deadline_.has_value()) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(*deadline_ - now).count();
}

}  // namespace convnextv2::dist
