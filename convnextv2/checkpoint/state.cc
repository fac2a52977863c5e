#include "convnextv2/checkpoint/state.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>

#include <mutex>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::checkpoint {
namespace {

std::string Few(const std::vector<std::string>& names) {
  constexpr size_t kShown = 6;
  std::vector<std::string> shown(names.begin(),
                                 names.begin() + std::min(names.size(), kShown));
  std::string s = absl::StrJoin(shown, ", ");
  if (names.size() > kShown) absl::StrAppend(&s, " ... (", names.size(), " in all)");
  return s;
}

std::string Shape(const at::Tensor& t) {
  return absl::StrCat("(", absl::StrJoin(t.sizes(), ", "), ")");
}

// The key libtorch's Optimizer::state() uses for a parameter: a string of the TensorImpl
// address in libtorch 1.x, the address itself in 2.x.
template <typename Map>
typename Map::key_type StateKey(const at::Tensor& p) {
  using Key = typename Map::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    // What libtorch 1.x's c10::guts::to_string (gone in 2.x) made of it: the streamed pointer.
    std::ostringstream key;
    key << p.unsafeGetTensorImpl();
    return key.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

using StateMap = std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;

}  // namespace

TensorMap ModuleState(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(/*recurse=*/true)) out[b.key()] = b.value();
  return out;
}

void AddModule(const torch::nn::Module& module, absl::string_view prefix, Checkpoint* ckpt) {
  for (const auto& p : module.named_parameters(/*recurse=*/true)) {
    ckpt->Add(absl::StrCat(prefix, p.key()), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/true)) {
    ckpt->Add(absl::StrCat(prefix, b.key()), b.value());
  }
}

absl::Status LoadModuleState(const TensorMap& state, torch::nn::Module& module, bool strict,
                             absl::string_view what, LoadReport* report) {
  LoadReport local;
  LoadReport& r = report ? *report : local;
  TensorMap targets = ModuleState(module);
  for (const auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it == state.end()) {
      r.missing.push_back(name);
    } else if (!it->second.sizes().equals(target.sizes())) {
      r.shape_mismatch.push_back(absl::StrCat(name, " ", Shape(it->second), " vs model ",
                                              Shape(target)));
    }
  }
  for (const auto& [name, tensor] : state) {
    if (!targets.count(name)) r.unexpected.push_back(name);
  }
  if (strict && (!r.missing.empty() || !r.unexpected.empty() || !r.shape_mismatch.empty())) {
    std::vector<std::string> parts;
    if (!r.shape_mismatch.empty()) parts.push_back("mismatched shapes: " + Few(r.shape_mismatch));
    if (!r.missing.empty()) parts.push_back("missing keys: " + Few(r.missing));
    if (!r.unexpected.empty()) parts.push_back("unexpected keys: " + Few(r.unexpected));
    return absl::FailedPreconditionError(absl::StrCat(
        what, " does not match the model (another variant or nb_classes?); ",
        absl::StrJoin(parts, "; ")));
  }
  c10::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto it = state.find(name);
    if (it == state.end() || !it->second.sizes().equals(target.sizes())) continue;
    target.copy_(it->second);
    r.loaded.push_back(name);
  }
  return absl::OkStatus();
}

absl::Status LoadModule(const Checkpoint& ckpt, absl::string_view prefix,
                        torch::nn::Module& module, bool strict, absl::string_view what) {
  TensorMap state;
  for (auto& [name, t] : ckpt.WithPrefix(prefix)) state[name] = t;
  if (state.empty()) {
    return absl::NotFoundError(absl::StrCat(what, " has no '", prefix, "*' tensors"));
  }
  return LoadModuleState(state, module, strict, what);
}

void AddOptimizer(torch::optim::Optimizer& optimizer, const optim::AlgorithmOps& ops,
                  const torch::OrderedDict<std::string, at::Tensor>& named_params,
                  absl::string_view prefix, Checkpoint* ckpt) {
  auto& state = optimizer.state();
  for (const auto& item : named_params) {
    auto it = state.find(StateKey<StateMap>(item.value()));
    if (it == state.end()) continue;  // never stepped (no gradient yet)
    const std::string base = absl::StrCat(prefix, item.key(), ".");
    for (optim::StateField& f : ops.save_state(*it->second)) {
      ckpt->Add(base + f.name, std::move(f.tensor));
    }
  }
}

namespace {

// One parameter's fields of a checkpoint, for an algorithm row's load_state.
class ParamFields : public optim::SavedFields {
 public:
  ParamFields(const std::string& name, const at::Tensor& param,
              const std::map<std::string, at::Tensor>& fields)
      : name_(name), param_(param), fields_(fields) {}

  bool Has(absl::string_view field) const override {
    return fields_.count(std::string(field)) > 0;
  }

  absl::StatusOr<at::Tensor> LikeParam(absl::string_view field) const override {
    CONVNEXTV2_ASSIGN_OR_RETURN(const at::Tensor* t, Find(field));
    if (t->dim() > 0 && !t->sizes().equals(param_.sizes())) {
      return absl::FailedPreconditionError(
          absl::StrCat("optimizer state ", name_, ".", field, " has shape ", Shape(*t),
                       ", the parameter ", Shape(param_)));
    }
    return t->to(param_.options()).clone();
  }

  absl::StatusOr<int64_t> Count(absl::string_view field) const override {
    CONVNEXTV2_ASSIGN_OR_RETURN(const at::Tensor* t, Find(field));
    return t->item<int64_t>();
  }

 private:
  absl::StatusOr<const at::Tensor*> Find(absl::string_view field) const {
    auto it = fields_.find(std::string(field));
    if (it == fields_.end()) {
      return absl::DataLossError(absl::StrCat("optimizer state of ", name_, " lacks ", field));
    }
    return &it->second;
  }

  const std::string& name_;
  const at::Tensor& param_;
  const std::map<std::string, at::Tensor>& fields_;
};

}  // namespace

absl::Status LoadOptimizer(const Checkpoint& ckpt, absl::string_view prefix,
                           const torch::OrderedDict<std::string, at::Tensor>& named_params,
                           const optim::AlgorithmOps& ops, torch::optim::Optimizer& optimizer) {
  const auto entries = ckpt.WithPrefix(prefix);
  std::map<std::string, std::map<std::string, at::Tensor>> by_param;
  for (const auto& [rest, t] : entries) {
    const size_t dot = rest.rfind('.');
    if (dot == std::string::npos) {
      return absl::DataLossError(absl::StrCat("optimizer entry '", rest, "' has no field"));
    }
    by_param[rest.substr(0, dot)][rest.substr(dot + 1)] = t;
  }
  std::vector<std::string> unknown;
  for (const auto& [name, fields] : by_param) {
    if (!named_params.contains(name)) unknown.push_back(name);
  }
  if (!unknown.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("optimizer state for parameters the model does not have: ", Few(unknown)));
  }
  auto& state = optimizer.state();
  state.clear();
  c10::NoGradGuard no_grad;
  for (const auto& [name, fields] : by_param) {
    const at::Tensor& param = named_params[name];
    CONVNEXTV2_ASSIGN_OR_RETURN(std::unique_ptr<torch::optim::OptimizerParamState> ps,
                                ops.load_state(ParamFields(name, param, fields)));
    state[StateKey<StateMap>(param)] = std::move(ps);
  }
  return absl::OkStatus();
}

void AddRngStates(Checkpoint* ckpt) {
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    ckpt->Add("rng.cpu", gen.get_state());
  }
  if (at::hasCUDA()) {
    const int n = at::detail::getCUDAHooks().getNumGPUs();
    for (int i = 0; i < n; ++i) {
      at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, i));
      std::lock_guard<std::mutex> lock(gen.mutex());
      ckpt->Add(absl::StrCat("rng.cuda.", i), gen.get_state());
    }
  }
}

absl::Status RestoreRngStates(const Checkpoint& ckpt) {
  const at::Tensor* cpu = ckpt.Find("rng.cpu");
  if (cpu == nullptr) return absl::DataLossError("the checkpoint has no rng.cpu state");
  {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*cpu);
  }
  if (at::hasCUDA()) {
    const int n = at::detail::getCUDAHooks().getNumGPUs();
    for (int i = 0; i < n; ++i) {
      const at::Tensor* s = ckpt.Find(absl::StrCat("rng.cuda.", i));
      if (s == nullptr) continue;  // written on fewer devices: those keep their seed
      at::Generator gen = at::globalContext().defaultGenerator(at::Device(at::kCUDA, i));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(*s);
    }
  }
  return absl::OkStatus();
}

}  // namespace convnextv2::checkpoint
