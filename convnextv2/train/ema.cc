#include "convnextv2/train/ema.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "absl/strings/str_cat.h"

namespace convnextv2::train {
namespace {

torch::OrderedDict<std::string, at::Tensor> Entries(const torch::nn::Module& m) {
  torch::OrderedDict<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key(), p.value());
  for (const auto& b : m.named_buffers()) out.insert(b.key(), b.value());
  return out;
}

}  // namespace

ModelEma::ModelEma(const std::shared_ptr<torch::nn::Module>& model, double decay, bool force_cpu)
    : decay_(decay) {
  TORCH_CHECK(model != nullptr, "ModelEma: null model");
  TORCH_CHECK(decay >= 0 && decay <= 1, "ModelEma: decay must be in [0, 1], got ", decay);
  ema_ = force_cpu ? model->clone(c10::Device(c10::kCPU)) : model->clone();
  ema_->eval();
  for (at::Tensor& p : ema_->parameters()) p.set_requires_grad(false);
}

void ModelEma::Update(const torch::nn::Module& model) {
  c10::NoGradGuard no_grad;
  const auto live = Entries(model);
  for (const auto& item : Entries(*ema_)) {
    const at::Tensor* source = live.find(item.key());
    TORCH_CHECK(source != nullptr, "ModelEma: the model has no entry ", item.key());
    at::Tensor ema = item.value();
    const at::Tensor v = source->detach().to(ema.device());
    if (!at::isFloatingType(ema.scalar_type())) {
      ema.copy_(v);
      continue;
    }
    ema.mul_(decay_).add_(v.to(ema.scalar_type()), 1.0 - decay_);
  }
}

torch::OrderedDict<std::string, at::Tensor> ModelEma::StateDict() const { return Entries(*ema_); }

absl::Status ModelEma::LoadStateDict(const torch::OrderedDict<std::string, at::Tensor>& state) {
  const auto mine = Entries(*ema_);
  for (const auto& item : state) {
    if (mine.find(item.key()) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("EMA state has '", item.key(), "', which the model does not have"));
    }
  }
  for (const auto& item : mine) {
    const at::Tensor* source = state.find(item.key());
    if (source == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("EMA state lacks '", item.key(), "'"));
    }
    if (source->sizes() != item.value().sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "EMA state '", item.key(), "' has shape ", c10::str(source->sizes()), ", expected ",
          c10::str(item.value().sizes())));
    }
  }
  c10::NoGradGuard no_grad;
  for (const auto& item : mine) item.value().copy_(*state.find(item.key()));
  return absl::OkStatus();
}

}  // namespace convnextv2::train
