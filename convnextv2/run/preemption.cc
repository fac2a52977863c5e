#include "convnextv2/run/preemption.h"

#include <glog/logging.h>

#include <string>
#include <utility>

namespace convnextv2::run {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void OnSignal(int sig) {
  if (g_signal == 0) g_signal = sig;
}

void Install(int sig, struct sigaction* old) {
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking reads in the data loader just continue
  PCHECK(sigaction(sig, &action, old) == 0) << "sigaction " << sig;
}

}  // namespace

PreemptionWatch::PreemptionWatch(int extra_signal, dist::TimeLimit limit)
    : extra_signal_(extra_signal), limit_(std::move(limit)) {
  g_signal = 0;
  if (limit_.lead_seconds() > 0) LOG(INFO) << limit_.description();
  Install(SIGTERM, &old_term_);
  if (extra_signal_ != 0 && extra_signal_ != SIGTERM) Install(extra_signal_, &old_extra_);
}

PreemptionWatch::~PreemptionWatch() {
  sigaction(SIGTERM, &old_term_, nullptr);
  if (extra_signal_ != 0 && extra_signal_ != SIGTERM) sigaction(extra_signal_, &old_extra_, nullptr);
}

bool PreemptionWatch::requested() const {
  if (g_signal != 0 || by_time_) return true;
  if (boundaries_++ > 0 && limit_.Near()) by_time_ = true;
  return by_time_;
}
int PreemptionWatch::signal() const { return g_signal; }

void PreemptionWatch::LogStop(int epoch, int64_t step) const {
  LOG(WARNING) << "Stopping at epoch " << epoch << " step " << step
               << (g_signal != 0 ? " on signal " + std::to_string(signal())
                   : by_time_ ? " with " + std::to_string(limit_.SecondsLeft()) +
                                    " s left before the job's time limit"
                              : std::string(" as requested"))
               << "; the checkpoint resumes from here";
}

}  // namespace convnextv2::run
