// What a caller of a training run (RunFinetune, RunPretrain, RunTraining) may ask besides the
// config. A header of its own so that the applications' headers stay free of libtorch.
#ifndef CONVNEXTV2_RUN_RUN_OPTIONS_H_
#define CONVNEXTV2_RUN_RUN_OPTIONS_H_

#include <cstdint>
#include <string>

namespace convnextv2::run {

struct RunOptions {
  std::string command_line;  // for the log
  // Behave as if preempted just before running batch `stop_step` of epoch `stop_epoch` (tests
  // and tools; -1: never).
  int stop_epoch = -1;
  int64_t stop_step = -1;
};

}  // namespace convnextv2::run

#endif  // CONVNEXTV2_RUN_RUN_OPTIONS_H_
