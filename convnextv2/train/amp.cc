#include "convnextv2/train/amp.h"

#include <ATen/autocast_mode.h>

#include "absl/strings/str_cat.h"
#include "convnextv2/config/run_checks.h"
#include "convnextv2/util/torch_compat.h"

namespace convnextv2::train {
namespace {

// The libtorch 1.13 / 2.x difference lives in util/torch_compat.h.
bool IsEnabled(c10::DeviceType d) { return compat::AutocastEnabled(d); }
void SetEnabled(c10::DeviceType d, bool on) { compat::SetAutocastEnabled(d, on); }
c10::ScalarType GetDtype(c10::DeviceType d) { return compat::AutocastDtype(d); }
void SetDtype(c10::DeviceType d, c10::ScalarType t) { compat::SetAutocastDtype(d, t); }

}  // namespace

absl::StatusOr<c10::ScalarType> AmpDtype(const ExperimentConfig& config, c10::Device device) {
  const bool cpu = device.is_cpu();
  switch (config::AmpDtypeOf(config.train())) {
    case config::AmpDtype::kAutomatic:
      return cpu ? c10::ScalarType::BFloat16 : c10::ScalarType::Half;
    case config::AmpDtype::kBfloat16:
      return c10::ScalarType::BFloat16;
    case config::AmpDtype::kFloat16:
      if (!cpu) return c10::ScalarType::Half;
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("train.amp_dtype '", config.train().amp_dtype(), "' is not available on ",
                   device.str(), " (CPU autocast supports bfloat16)"));
}

AutocastGuard::AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled)
    : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  prev_enabled_ = IsEnabled(device_);
  prev_dtype_ = GetDtype(device_);
  SetDtype(device_, dtype);
  SetEnabled(device_, true);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  // As Python's autocast: the cache of casted weights lives until the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetEnabled(device_, prev_enabled_);
  SetDtype(device_, prev_dtype_);
}

}  // namespace convnextv2::train
