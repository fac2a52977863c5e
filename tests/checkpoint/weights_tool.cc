// Test helper for the weight-format oracle tests (weights_oracle.py):
//   weights_tool logits WEIGHTS INPUT.safetensors OUT.safetensors [MODEL]
//       loads WEIGHTS as predict/--eval/export do (LoadInferenceModel), runs the float32 model
//       on INPUT's "x" and writes "logits"; prints the class names, one a line
//   weights_tool init WEIGHTS MODEL NUM_CLASSES
//       --finetune's initialization (InitFromPretrained, head re-initialized); prints its log
//   weights_tool make-checkpoint MODEL NUM_CLASSES OUT [CLASS_NAME...]
//       a convnextv2 "weights" checkpoint of a seeded random model whose every tensor (GRN's
//       zero-initialized gamma and beta too) is perturbed, with the class names in its header
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/safetensors.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/models/registry.h"

namespace ck = convnextv2::checkpoint;

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
  return 1;
}

int Logits(int argc, char** argv) {
  absl::StatusOr<ck::InferenceModel> m =
      ck::LoadInferenceModel(argv[2], argc > 5 ? argv[5] : "", "model");
  if (!m.ok()) return Fail(m.status());
  absl::StatusOr<ck::SafetensorsFile> in = ck::ReadSafetensors(argv[3]);
  if (!in.ok()) return Fail(in.status());
  c10::NoGradGuard no_grad;
  const at::Tensor logits = m->model->forward(in->tensors.at("x"));
  if (absl::Status s = ck::WriteSafetensors(argv[4], {{"logits", logits}}, {}); !s.ok()) {
    return Fail(s);
  }
  for (const std::string& name : m->class_names) std::printf("%s\n", name.c_str());
  return 0;
}

int Init(char** argv) {
  absl::StatusOr<convnextv2::models::ConvNeXtV2> model =
      convnextv2::models::CreateConvNeXtV2(argv[3], std::atoi(argv[4]));
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<ck::PretrainedReport> r =
      ck::InitFromPretrained(argv[2], "model|module", "", **model, /*reinit_head=*/true);
  if (!r.ok()) return Fail(r.status());
  for (const std::string& line : ck::DescribeLoad(argv[2], *r)) std::printf("%s\n", line.c_str());
  return 0;
}

int MakeCheckpoint(int argc, char** argv) {
  at::manual_seed(7);
  absl::StatusOr<convnextv2::models::ConvNeXtV2> model =
      convnextv2::models::CreateConvNeXtV2(argv[2], std::atoi(argv[3]));
  if (!model.ok()) return Fail(model.status());
  ck::Checkpoint c;
  c.header.set_kind("weights");
  c.header.set_model(argv[2]);
  for (int i = 5; i < argc; ++i) c.header.add_class_names(argv[i]);
  {
    c10::NoGradGuard no_grad;
    for (auto& p : (*model)->parameters()) p.add_(at::randn_like(p) * 0.05);
  }
  ck::AddModule(**model, "model.", &c);
  if (absl::Status s = ck::WriteCheckpoint(argv[4], c); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "logits" && argc >= 5) return Logits(argc, argv);
  if (cmd == "init" && argc == 5) return Init(argv);
  if (cmd == "make-checkpoint" && argc >= 5) return MakeCheckpoint(argc, argv);
  std::fprintf(stderr, "usage: see the comment at the top of weights_tool.cc\n");
  return 2;
}
