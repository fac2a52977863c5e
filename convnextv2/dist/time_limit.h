// The Slurm job's time limit as seen from inside a run, so that a run about to hit it saves a
// checkpoint and exits 75 ("requeue me") even on a cluster that sends no warning signal.
//
//   TimeLimit limit = TimeLimit::FromSlurm(/*lead_seconds=*/300);   // one squeue call
//   LOG(INFO) << limit.description();
//   ... at a step boundary:  if (limit.Near()) { save(); return 75; }
//
// The remaining time is read once at start (`squeue -h -j <job> -o %L`) and counted down on a
// steady clock, so the per-step check costs a clock read. No libtorch.
#ifndef CONVNEXTV2_DIST_TIME_LIMIT_H_
#define CONVNEXTV2_DIST_TIME_LIMIT_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace convnextv2::dist {

// Seconds of a Slurm duration as sbatch --time takes it and squeue's %L prints it: "MM",
// "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS". nullopt for no limit ("UNLIMITED",
// "INFINITE", "NOT_SET"); an error naming the text for anything else.
absl::StatusOr<std::optional<int64_t>> ParseSlurmTime(absl::string_view text);

// The job id squeue/scontrol should be given for this process's job: "<array job>_<task>" for
// an array task (its SLURM_JOB_ID, when equal to the array's id, would name every task of the
// array), else SLURM_JOB_ID; "" outside Slurm.
std::string SlurmJobSpec();

class TimeLimit {
 public:
  using Clock = std::chrono::steady_clock;

  // No limit: Near() is always false. lead_seconds() is still what was asked for.
  TimeLimit() = default;
  TimeLimit(Clock::time_point deadline, int64_t lead_seconds, std::string description);

  // The limit of the Slurm job this process runs in, `lead_seconds` before its end. No limit
  // when lead_seconds is 0, outside Slurm, when the job has none, or when squeue cannot tell
  // (description() then says why).
  static TimeLimit FromSlurm(int64_t lead_seconds);

  bool active() const { return deadline_.has_value(); }
  // Less than lead_seconds are left before the deadline.
  bool Near(Clock::time_point now = Clock::now()) const;
  // Seconds left before the deadline (0 when there is none).
  int64_t SecondsLeft(Clock::time_point now = Clock::now()) const;
  int64_t lead_seconds() const { return lead_seconds_; }
  // What was found, for the run's log ("job 12_3: 3540 s left; ...").
  const std::string& description() const { return description_; }

 private:
  std::optional<Clock::time_point> deadline_;
  int64_t lead_seconds_ = 0;
  std::string description_ = "no time limit";
};

}  // namespace convnextv2::dist

#endif  // CONVNEXTV2_DIST_TIME_LIMIT_H_
