#include "convnextv2/engine/preemption.h"

#include <glog/logging.h>

#include <string>

namespace convnextv2::engine {
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

PreemptionWatch::PreemptionWatch(int extra_signal) : extra_signal_(extra_signal) {
  g_signal = 0;
  Install(SIGTERM, &old_term_);
  if (extra_signal_ != 0 && extra_signal_ != SIGTERM) Install(extra_signal_, &old_extra_);
}

PreemptionWatch::~PreemptionWatch() {
  sigaction(SIGTERM, &old_term_, nullptr);
  if (extra_signal_ != 0 && extra_signal_ != SIGTERM) sigaction(extra_signal_, &old_extra_, nullptr);
}

bool PreemptionWatch::requested() const { return g_signal != 0; }
int PreemptionWatch::signal() const { return g_signal; }

void PreemptionWatch::LogStop(int epoch, int64_t step) const {
  LOG(WARNING) << "Stopping at epoch " << epoch << " step " << step
               << (requested() ? " on signal " + std::to_string(signal())
                               : std::string(" as requested"))
               << "; the checkpoint resumes from here";
}

}  // namespace convnextv2::engine
