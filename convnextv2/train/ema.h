// Exponential moving average of a model's weights (timm's ModelEma, as main_finetune.py uses it).
//
//   ModelEma ema(model.ptr(), /*decay=*/0.9999, /*force_cpu=*/false);
//   ... optimizer.step(); ema.Update(*model);     // after every optimizer step
//   std::shared_ptr<torch::nn::Module> averaged = ema.module();        // evaluate it
//   torch::OrderedDict<std::string, at::Tensor> sd = ema.StateDict();  // "model_ema" of a ckpt
//
// Any module: the average works on parameters and buffers by name; a task that needs its model's
// type casts module() itself.
//
// The copy is made at construction (after the model is on its device, as the official script
// does), kept in eval mode with gradients off, and updated for every state-dict entry
// (parameters and buffers): ema = decay * ema + (1 - decay) * model. Integer buffers, which
// cannot be averaged, are copied. With force_cpu the average lives on the CPU.
#ifndef CONVNEXTV2_TRAIN_EMA_H_
#define CONVNEXTV2_TRAIN_EMA_H_

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/ordered_dict.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace convnextv2::train {

class ModelEma {
 public:
  ModelEma(const std::shared_ptr<torch::nn::Module>& model, double decay, bool force_cpu);

  void Update(const torch::nn::Module& model);

  double decay() const { return decay_; }
  const std::shared_ptr<torch::nn::Module>& module() const { return ema_; }

  // Parameters then buffers by their state-dict names (the model's own names).
  torch::OrderedDict<std::string, at::Tensor> StateDict() const;

  // Copies tensors into the average by name; every name of StateDict() must be present with its
  // shape (InvalidArgument naming the first that is not). Extra names are errors too.
  absl::Status LoadStateDict(const torch::OrderedDict<std::string, at::Tensor>& state);

 private:
  std::shared_ptr<torch::nn::Module> ema_;
  double decay_;
};

}  // namespace convnextv2::train

#endif  // CONVNEXTV2_TRAIN_EMA_H_
