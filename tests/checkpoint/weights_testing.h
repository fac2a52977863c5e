// Shared fixtures of the weight-format tests: a fresh folder under TEST_TMPDIR, a seeded model
// whose every tensor is perturbed (GRN's zero-initialized gamma and beta too, so that a
// mis-loaded GRN changes the output) and its logits on a fixed small input.
#ifndef CONVNEXTV2_TESTS_CHECKPOINT_WEIGHTS_TESTING_H_
#define CONVNEXTV2_TESTS_CHECKPOINT_WEIGHTS_TESTING_H_

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "convnextv2/models/registry.h"

namespace convnextv2::testing {

inline std::string FreshTmpDir(const std::string& name) {
  const char* root = std::getenv("TEST_TMPDIR");
  const std::string d = std::string(root ? root : "/tmp") + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

inline models::ConvNeXtV2 PerturbedModel(const std::string& variant, int64_t classes, int seed) {
  at::manual_seed(seed);
  models::ConvNeXtV2 m = *models::CreateConvNeXtV2(variant, classes);
  c10::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(at::randn_like(p) * 0.05);
  m->eval();
  return m;
}

inline at::Tensor SmallLogits(models::ConvNeXtV2 m) {  // a holder: shares the module
  at::manual_seed(3);
  c10::NoGradGuard no_grad;
  return m->forward(at::randn({2, 3, 32, 32}));
}

}  // namespace convnextv2::testing

#endif  // CONVNEXTV2_TESTS_CHECKPOINT_WEIGHTS_TESTING_H_
