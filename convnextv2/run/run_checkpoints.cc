#include "convnextv2/run/run_checkpoints.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/checkpoint/header_fields.h"
#include "convnextv2/checkpoint/policy.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/config/config.h"
#include "convnextv2/optim/algorithms.h"
#include "convnextv2/optim/optimizers.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"

namespace convnextv2::run {
namespace {

namespace pb = google::protobuf;
constexpr char kModel[] = "model.";
constexpr char kOptimizer[] = "optimizer.";

// The algorithm row of the optimizer the run built from the same (validated) optim.opt.
const optim::AlgorithmOps& OpsOfRun(const ExperimentConfig& config) {
  absl::StatusOr<const optim::OptimizerEntry*> entry = optim::FindOptimizer(config.optim().opt());
  CHECK(entry.ok()) << entry.status();
  return optim::OpsOf((*entry)->algorithm);
}

void Flatten(const pb::Message& m, const std::string& prefix,
             std::map<std::string, std::string>* out) {
  const pb::Descriptor* d = m.GetDescriptor();
  const pb::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    const std::string name = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated()) {
      Flatten(r->GetMessage(m, f), name, out);
      continue;
    }
    std::string value;
    if (f->is_repeated()) {
      std::vector<std::string> items(r->FieldSize(m, f));
      for (int j = 0; j < r->FieldSize(m, f); ++j) {
        pb::TextFormat::PrintFieldValueToString(m, f, j, &items[j]);
      }
      value = "[" + absl::StrJoin(items, ", ") + "]";
    } else {
      pb::TextFormat::PrintFieldValueToString(m, f, -1, &value);
    }
    (*out)[name] = value;
  }
}

}  // namespace

std::vector<std::string> ConfigChanges(const std::string& stored_text,
                                       const ExperimentConfig& current) {
  ExperimentConfig stored;
  pb::TextFormat::Parser parser;
  parser.AllowUnknownField(true);  // fields removed since the checkpoint was written
  if (!parser.ParseFromString(stored_text, &stored)) return {};
  std::map<std::string, std::string> before, after;
  Flatten(stored, "", &before);
  Flatten(current, "", &after);
  std::vector<std::string> changes;
  for (const auto& [name, value] : after) {
    auto it = before.find(name);
    if (it != before.end() && it->second != value) {
      changes.push_back(absl::StrCat(name, ": ", it->second, " -> ", value));
    }
  }
  return changes;
}

absl::Status StartLogs(const ExperimentConfig& config, const LoopState& state,
                       const record::Declaration& declaration, record::RunRecord* record) {
  const std::string& out_dir = config.output().output_dir();
  if (state.resumed && !out_dir.empty()) {
    CONVNEXTV2_RETURN_IF_ERROR(TruncateEpochLog(out_dir + "/log.txt", state.next_epoch));
  }
  return record->Start(config, declaration,
                       state.resumed ? state.global_step - 1 : int64_t{-1});
}

absl::Status TruncateEpochLog(const std::string& path, int next_epoch) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();  // no log yet
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    const size_t at = line.rfind("\"epoch\": ");
    int epoch = -1;
    if (at != std::string::npos) {
      absl::string_view rest = absl::string_view(line).substr(at + 9);
      rest = rest.substr(0, rest.find_first_of(",}"));
      if (!absl::SimpleAtoi(rest, &epoch)) epoch = -1;
    }
    if (epoch >= next_epoch) {
      dropped = true;
      continue;
    }
    absl::StrAppend(&kept, line, "\n");
  }
  if (!dropped) return absl::OkStatus();
  return util::WriteFileAtomically(path, kept);
}

RunCheckpoints::RunCheckpoints(const ExperimentConfig& config, bool writer,
                               torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                               int64_t steps_per_epoch, std::string model_name)
    : config_(config),
      writer_(writer),
      model_(model),
      optimizer_(optimizer),
      steps_per_epoch_(steps_per_epoch),
      model_name_(model_name.empty() ? config.model().model() : std::move(model_name)) {}

std::string FcmaeModelName(absl::string_view variant) { return absl::StrCat("fcmae_", variant); }

void RunCheckpoints::AddExtraState(
    std::function<void(checkpoint::Checkpoint*)> save,
    std::function<absl::Status(const checkpoint::Checkpoint&)> load) {
  extra_save_.push_back(std::move(save));
  extra_load_.push_back(std::move(load));
}

absl::StatusOr<bool> RunCheckpoints::FindResumeCheckpoint(std::string* path,
                                                         checkpoint::Checkpoint* ckpt) const {
  const auto& k = config_.checkpoint();
  const std::string& out_dir = config_.output().output_dir();
  if (!k.resume().empty()) {
    *path = k.resume();
    CONVNEXTV2_ASSIGN_OR_RETURN(*ckpt, checkpoint::ReadCheckpoint(*path));
    return true;
  }
  if (!k.auto_resume() || out_dir.empty()) return false;
  absl::StatusOr<std::optional<checkpoint::Found>> found = checkpoint::FindNewestValid(out_dir);
  CONVNEXTV2_RETURN_IF_ERROR(found);
  if (!found->has_value()) return false;  // first launch
  for (const std::string& why : (*found)->skipped) {
    LOG(WARNING) << "auto_resume: skipping invalid checkpoint: " << why;
  }
  *path = (*found)->path;
  *ckpt = std::move((*found)->checkpoint);
  return true;
}

absl::Status RunCheckpoints::CheckResumable(const checkpoint::CheckpointHeader& h,
                                            const std::string& what) const {
  CONVNEXTV2_ASSIGN_OR_RETURN(const checkpoint::Kind kind, checkpoint::KindOf(h, what));
  if (kind != checkpoint::Kind::kTraining) {
    CONVNEXTV2_ASSIGN_OR_RETURN(const std::optional<checkpoint::BestOf> best_of,
                                checkpoint::BestOfOf(h, what));
    return absl::FailedPreconditionError(absl::StrCat(
        what, " holds ", checkpoint::KindName(kind), " state",
        best_of ? absl::StrCat(" (the best ", checkpoint::BestOfName(*best_of), " weights)") : "",
        ", not a training state to resume: use checkpoint.finetune to initialize from it, or "
        "eval.eval to evaluate it"));
  }
  if (h.model() != model_name_) {
    const bool ckpt_fcmae = absl::StartsWith(h.model(), "fcmae_");
    if (ckpt_fcmae != absl::StartsWith(model_name_, "fcmae_")) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, ckpt_fcmae
                    ? " is an FCMAE pre-training checkpoint, not a fine-tuning state to resume: "
                      "use checkpoint.finetune to initialize the encoder from it"
                    : " is a fine-tuning checkpoint; pre-training resumes only from pretrain's "
                      "own checkpoints"));
    }
    return absl::FailedPreconditionError(absl::StrCat(what, " is a ", h.model(), ", this run is a ",
                                                      model_name_, " (model.model ",
                                                      config_.model().model(), ")"));
  }
  // Names compare as timm does: "AdamW" is adamw; "nesterov" is "sgd".
  absl::StatusOr<const optim::OptimizerEntry*> saved = optim::FindOptimizer(h.optimizer());
  absl::StatusOr<const optim::OptimizerEntry*> wanted = optim::FindOptimizer(config_.optim().opt());
  if (!saved.ok() || !wanted.ok() || (*saved)->algorithm != (*wanted)->algorithm ||
      (*saved)->nesterov != (*wanted)->nesterov) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " holds ", h.optimizer(), " optimizer state, the config says optim.opt ",
        config_.optim().opt(), "; resume with the same optimizer, or start from its weights "
        "with checkpoint.finetune"));
  }
  if (h.steps_per_epoch() != steps_per_epoch_) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " was written with ", h.steps_per_epoch(), " steps per epoch, this run has ",
        steps_per_epoch_, " (batch size, world size or dataset changed); resuming would not "
        "continue the same run: use checkpoint.finetune to start a new one from its weights"));
  }
  return absl::OkStatus();
}

absl::Status RunCheckpoints::Restore(const checkpoint::Checkpoint& ckpt,
                                     const std::string& what) {
  CONVNEXTV2_RETURN_IF_ERROR(checkpoint::LoadModule(ckpt, kModel, model_, /*strict=*/true, what));
  if (absl::Status s = checkpoint::LoadOptimizer(ckpt, kOptimizer, model_.named_parameters(),
                                                 OpsOfRun(config_), optimizer_);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }
  if (absl::Status s = checkpoint::RestoreRngStates(ckpt); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
  }
  for (auto& load : extra_load_) {
    if (absl::Status s = load(ckpt); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LoopState> RunCheckpoints::Resume() {
  LoopState fresh;
  fresh.next_epoch = config_.train().start_epoch();
  std::string path;
  checkpoint::Checkpoint ckpt;
  CONVNEXTV2_ASSIGN_OR_RETURN(const bool found, FindResumeCheckpoint(&path, &ckpt));
  if (!found) return fresh;
  const checkpoint::CheckpointHeader& h = ckpt.header;
  const std::string what = absl::StrCat("checkpoint ", path);
  CONVNEXTV2_RETURN_IF_ERROR(CheckResumable(h, what));
  CONVNEXTV2_RETURN_IF_ERROR(Restore(ckpt, what));
  LoopState state;
  state.next_epoch = h.next_epoch();
  state.next_step = h.next_step();
  state.global_step = h.global_step();
  state.best_acc1 = h.best_acc1();
  state.best_ema_acc1 = h.best_ema_acc1();
  state.scalars.insert(h.scalars().begin(), h.scalars().end());
  state.resumed = true;
  LOG(INFO) << "Resume checkpoint " << path << ": epoch " << state.next_epoch << ", step "
            << state.next_step << " (global step " << state.global_step << ")";
  for (const std::string& change : ConfigChanges(h.config_text(), config_)) {
    LOG(INFO) << "resume: setting differs from the checkpoint, using the new value: " << change;
  }
  return state;
}

checkpoint::CheckpointHeader RunCheckpoints::Header(checkpoint::Kind kind, int epoch,
                                                    const LoopState& state) const {
  checkpoint::CheckpointHeader h;
  checkpoint::SetKind(kind, &h);
  h.set_model(model_name_);
  h.set_config_text(config::ToText(config_));
  h.set_epoch(epoch);
  h.set_global_step(state.global_step);
  h.set_best_acc1(state.best_acc1);
  h.set_best_ema_acc1(state.best_ema_acc1);
  for (const std::string& name : class_names_) h.add_class_names(name);
  return h;
}

checkpoint::Checkpoint RunCheckpoints::Build(int epoch, const LoopState& state) const {
  checkpoint::Checkpoint ckpt;
  ckpt.header = Header(checkpoint::Kind::kTraining, epoch, state);
  checkpoint::CheckpointHeader& h = ckpt.header;
  h.set_optimizer(config_.optim().opt());
  h.set_next_epoch(state.next_epoch);
  h.set_next_step(state.next_step);
  h.set_steps_per_epoch(steps_per_epoch_);
  h.mutable_scalars()->insert(state.scalars.begin(), state.scalars.end());
  checkpoint::AddModule(model_, kModel, &ckpt);
  checkpoint::AddOptimizer(optimizer_, OpsOfRun(config_), model_.named_parameters(), kOptimizer,
                           &ckpt);
  checkpoint::AddRngStates(&ckpt);
  for (const auto& save : extra_save_) save(&ckpt);
  return ckpt;
}

absl::Status RunCheckpoints::Write(const std::string& path,
                                   const checkpoint::Checkpoint& ckpt) const {
  if (absl::Status s = checkpoint::WriteCheckpoint(path, ckpt); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("saving checkpoint: ", s.message()));
  }
  LOG(INFO) << "Saved " << path;
  return absl::OkStatus();
}

absl::Status RunCheckpoints::WriteTraining(const std::string& path, int epoch,
                                           const LoopState& state) const {
  if (before_save_) CONVNEXTV2_RETURN_IF_ERROR(before_save_());
  return Write(path, Build(epoch, state));
}

absl::Status RunCheckpoints::SaveEpochEnd(int epoch, const LoopState& state) {
  const auto& k = config_.checkpoint();
  const std::string& dir = config_.output().output_dir();
  if (!writer_ || dir.empty() || !k.save_ckpt()) return absl::OkStatus();
  const bool last = epoch + 1 == config_.train().epochs();
  if ((epoch + 1) % k.save_ckpt_freq() != 0 && !last) return absl::OkStatus();
  const std::string path = checkpoint::EpochPath(dir, epoch);
  CONVNEXTV2_RETURN_IF_ERROR(WriteTraining(path, epoch, state));
  util::FaultPoint("save_between_files");  // saved; superseded files not yet removed
  for (const std::string& p : checkpoint::RemoveStepCheckpoints(dir)) {
    LOG(INFO) << "Removed superseded " << p;
  }
  for (const std::string& p : checkpoint::PruneEpochCheckpoints(dir, k.save_ckpt_num())) {
    LOG(INFO) << "Removed " << p << " (keeping the newest " << k.save_ckpt_num() << ")";
  }
  return absl::OkStatus();
}

absl::Status RunCheckpoints::SaveMidEpoch(int epoch, const LoopState& state) {
  const std::string& dir = config_.output().output_dir();
  if (!writer_ || dir.empty()) return absl::OkStatus();
  const std::string path = checkpoint::StepPath(dir, epoch, state.next_step);
  CONVNEXTV2_RETURN_IF_ERROR(WriteTraining(path, epoch, state));
  util::FaultPoint("save_between_files");
  checkpoint::RemoveStepCheckpoints(dir, /*except=*/path);
  return absl::OkStatus();
}

absl::Status RunCheckpoints::SaveBest(int epoch, const LoopState& state,
                                      const torch::nn::Module& weights, bool ema) {
  const std::string& dir = config_.output().output_dir();
  if (!writer_ || dir.empty() || !config_.checkpoint().save_ckpt()) return absl::OkStatus();
  checkpoint::Checkpoint ckpt;
  ckpt.header = Header(checkpoint::Kind::kWeights, epoch, state);
  checkpoint::SetBestOf(ema ? checkpoint::BestOf::kModelEma : checkpoint::BestOf::kModel,
                        &ckpt.header);
  // EMA weights keep their own name, so nothing mistakes them for the model's; the official
  // best-ema file also holds the model (its `model` key is what --finetune loads by default).
  if (ema) checkpoint::AddModule(model_, kModel, &ckpt);
  checkpoint::AddModule(weights, ema ? "model_ema." : kModel, &ckpt);
  return Write(checkpoint::BestPath(dir, ema), ckpt);
}

void AddLossScalerState(train::LossScaler* scaler, RunCheckpoints* ckpts) {
  ckpts->AddExtraState(
      [scaler](checkpoint::Checkpoint* ckpt) {
        ckpt->Add("scaler.scale", at::scalar_tensor(scaler->state().scale, at::kDouble));
        ckpt->Add("scaler.growth_tracker",
                  at::scalar_tensor(scaler->state().growth_tracker, at::kLong));
      },
      [scaler](const checkpoint::Checkpoint& ckpt) -> absl::Status {
        const at::Tensor* scale = ckpt.Find("scaler.scale");
        const at::Tensor* tracker = ckpt.Find("scaler.growth_tracker");
        if (scale != nullptr && tracker != nullptr) {
          scaler->set_state(
              train::LossScalerState{scale->item<double>(), tracker->item<int64_t>()});
        } else {
          LOG(WARNING) << "the checkpoint holds no loss-scaler state (saved without use_amp): "
                          "the scaler starts at "
                       << scaler->scale();
        }
        return absl::OkStatus();
      });
}

bool RunCheckpoints::PeriodicSaveDue(int64_t global_step, int64_t step) const {
  const int n = config_.checkpoint().save_ckpt_steps();
  return n > 0 && step > 0 && global_step > 0 && global_step % n == 0 &&
         config_.checkpoint().save_ckpt() && !config_.output().output_dir().empty();
}

}  // namespace convnextv2::run
