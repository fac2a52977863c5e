// What a package's config validator writes to: every problem found, one line each, and which
// binary the config is for. config::Validate runs the validators of models, data, optim and run
// in turn on one Checks, so that a user sees every error of a config at once.
//
//   void CheckOptimConfig(const ExperimentConfig& c, config::Checks& checks) {
//     checks.Require(c.optim().opt_eps() > 0, "optim.opt_eps: ", c.optim().opt_eps(),
//                    " must be positive");
//     LayerDecayTypes().Check(c.optim().layer_decay_type(), checks);   // config/choices.h
//   }
//
// No libtorch and no protobuf here: the launcher validates sweeps with the same validators.
#ifndef CONVNEXTV2_CONFIG_CHECKS_H_
#define CONVNEXTV2_CONFIG_CHECKS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace convnextv2::config {

class Checks {
 public:
  // `pretrain`: the config is for the pre-training binary (main_pretrain.py's rules), else for
  // fine-tuning (main_finetune.py's).
  explicit Checks(bool pretrain) : pretrain_(pretrain) {}

  bool pretrain() const { return pretrain_; }

  // Records the concatenated `message` (field, value, what is allowed) when `ok` is false.
  template <typename... Parts>
  void Require(bool ok, const Parts&... message) {
    if (!ok) errors_.push_back(absl::StrCat(message...));
  }

  void Add(std::string error) { errors_.push_back(std::move(error)); }

  const std::vector<std::string>& errors() const { return errors_; }

  // OK when nothing was recorded, else InvalidArgument "<title>:" and one indented line per
  // error, in the order they were found.
  absl::Status ToStatus(absl::string_view title) const;

 private:
  bool pretrain_;
  std::vector<std::string> errors_;
};

}  // namespace convnextv2::config

#endif  // CONVNEXTV2_CONFIG_CHECKS_H_
