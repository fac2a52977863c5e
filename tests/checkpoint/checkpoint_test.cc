#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "convnextv2/checkpoint/file.h"
#include "convnextv2/checkpoint/policy.h"
#include "convnextv2/checkpoint/pretrained.h"
#include "convnextv2/checkpoint/state.h"
#include "convnextv2/checkpoint/torch_zip.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/util/files.h"

namespace convnextv2::checkpoint {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string TmpDir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

Checkpoint Golden() {
  Checkpoint c;
  CheckpointHeader& h = c.header;
  h.set_kind("training");
  h.set_model("convnextv2_atto");
  h.set_optimizer("adamw");
  h.set_config_text("model { model: \"convnextv2_atto\" }\n");
  h.set_epoch(3);
  h.set_next_epoch(4);
  h.set_next_step(0);
  h.set_global_step(40);
  h.set_steps_per_epoch(10);
  h.set_best_acc1(87.5);
  (*h.mutable_scalars())["train.loss_sum"] = 1.25;
  h.set_created_unix(1795000000);
  c.Add("model.w", at::arange(6, at::kFloat).reshape({2, 3}));
  c.Add("model.b", at::tensor({0.5, -1.0}, at::kDouble));
  c.Add("optimizer.w.step", at::scalar_tensor(40, at::kLong));
  c.Add("x.bf16", at::tensor({1.0f, 2.5f}).to(at::kBFloat16));
  c.Add("x.bool", at::tensor({1, 0, 1}).to(at::kBool));
  c.Add("x.u8", at::arange(5, at::kByte));
  return c;
}

// The bytes of Golden()'s "model.w" (arange(6) in float32): where its record lies in a file.
size_t TensorOffset(const std::string& bytes) {
  const at::Tensor w = at::arange(6, at::kFloat);
  const size_t at = bytes.find(std::string(static_cast<const char*>(w.data_ptr()), 24));
  EXPECT_NE(at, std::string::npos);
  return at;
}

std::string Flip(std::string bytes, size_t at) {
  bytes.at(at) ^= 0x10;
  return bytes;
}

void ExpectGolden(const absl::StatusOr<Checkpoint>& c, int version) {
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->header.format_version(), version);
  EXPECT_EQ(c->header.model(), "convnextv2_atto");
  EXPECT_EQ(c->header.optimizer(), "adamw");
  EXPECT_EQ(c->header.next_epoch(), 4);
  EXPECT_EQ(c->header.global_step(), 40);
  EXPECT_EQ(c->header.best_acc1(), 87.5);
  EXPECT_EQ(c->header.scalars().at("train.loss_sum"), 1.25);
  const Checkpoint want = Golden();
  ASSERT_EQ(c->tensors.size(), want.tensors.size());
  for (const auto& [name, t] : want.tensors) {
    const at::Tensor* got = c->Find(name);
    ASSERT_NE(got, nullptr) << name;
    EXPECT_EQ(got->scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(at::equal(*got, t)) << name;
  }
}

// golden_v1.ckpt was written by format version 1 (this project's own container, which is now
// only read); golden_v2.pth by version 2, the torch.save zip (regenerate only when adding a
// version: --gtest_also_run_disabled_tests --gtest_filter=*MakeGolden*, then copy it to
// testdata/).
TEST(GoldenTest, DISABLED_MakeGolden) {
  ASSERT_TRUE(WriteCheckpoint(std::string(getenv("TEST_UNDECLARED_OUTPUTS_DIR")) +
                                  "/golden_v2.pth", Golden()).ok());
}

TEST(GoldenTest, VersionOneFileStillLoads) {
  ExpectGolden(ReadCheckpoint("tests/checkpoint/testdata/golden_v1.ckpt"), 1);
  absl::StatusOr<CheckpointHeader> h = ReadHeader("tests/checkpoint/testdata/golden_v1.ckpt");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->next_epoch(), 4);
  EXPECT_TRUE(LooksLikeCheckpoint("tests/checkpoint/testdata/golden_v1.ckpt"));
}

TEST(GoldenTest, VersionTwoFileStillLoads) {
  ExpectGolden(ReadCheckpoint("tests/checkpoint/testdata/golden_v2.pth"), 2);
  // What is written today reads back the same.
  ExpectGolden(ParseCheckpoint(SerializeCheckpoint(Golden()), "mem"), kFormatVersion);
}

TEST(FileTest, RoundTripAndBadInput) {
  const std::string dir = TmpDir("file");
  const std::string path = dir + "/c.pth";
  Checkpoint golden = Golden();
  golden.Add("x.transposed", at::arange(6, at::kLong).reshape({2, 3}).t());  // not contiguous
  ASSERT_TRUE(WriteCheckpoint(path, golden).ok());
  absl::StatusOr<Checkpoint> back = ReadCheckpoint(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::equal(*back->Find("x.transposed"), golden.Find("x.transposed")->contiguous()));
  EXPECT_TRUE(LooksLikeCheckpoint(path));
  absl::StatusOr<CheckpointHeader> header = ReadHeader(path);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->format_version(), 2);
  EXPECT_EQ(header->next_epoch(), 4);
  std::string bytes = *util::ReadFile(path);
  ASSERT_EQ(bytes.substr(0, 4), "PK\x03\x04");  // a zip, as torch.save writes

  absl::StatusOr<Checkpoint> missing = ReadCheckpoint(dir + "/none.pth");
  EXPECT_THAT(Msg(missing.status()), HasSubstr("no such file"));
  EXPECT_THAT(Msg(ReadHeader(dir + "/none.pth").status()), HasSubstr("no such file"));

  ASSERT_TRUE(util::WriteFileAtomically(dir + "/text.pth", "hello, not a checkpoint").ok());
  EXPECT_THAT(Msg(ReadCheckpoint(dir + "/text.pth").status()),
              HasSubstr("is not a convnextv2 checkpoint"));

  for (size_t cut : {bytes.size() - 1, bytes.size() - 30, bytes.size() / 2, size_t{10}}) {
    ASSERT_TRUE(util::WriteFileAtomically(dir + "/cut.pth", bytes.substr(0, cut)).ok());
    for (const absl::Status& s :
         {ReadCheckpoint(dir + "/cut.pth").status(), ReadHeader(dir + "/cut.pth").status()}) {
      EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << cut << ": " << s;
      EXPECT_THAT(Msg(s), HasSubstr(dir + "/cut.pth: truncated")) << cut;
    }
  }

  // A flipped bit in any record is caught by that record's CRC-32: a tensor's data, the
  // pickled dict, the header record. Only the last one stops ReadHeader.
  struct Case {
    size_t at;
    const char* record;
    bool header_fails;
  };
  for (const Case& c : {Case{TensorOffset(bytes) + 5, "data/0", false},
                        Case{bytes.find("optimizer"), "data.pkl", false},
                        Case{bytes.rfind("convnextv2_atto"), "convnextv2/header.pb", true}}) {
    ASSERT_TRUE(util::WriteFileAtomically(dir + "/flip.pth", Flip(bytes, c.at)).ok());
    const absl::Status s = ReadCheckpoint(dir + "/flip.pth").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << c.record;
    EXPECT_THAT(Msg(s), HasSubstr(absl::StrCat(dir, "/flip.pth: checksum mismatch in record ",
                                               c.record, " ")));
    EXPECT_EQ(ReadHeader(dir + "/flip.pth").ok(), !c.header_fails) << c.record;
  }

  // A header from a newer version, and a PyTorch zip without a header (a torch.save file).
  CheckpointHeader newer;
  newer.set_format_version(9);
  c10::impl::GenericDict empty(c10::StringType::get(), c10::AnyType::get());
  ASSERT_TRUE(util::WriteFileAtomically(
                  dir + "/newer.pth",
                  SerializeTorchZip(empty, {{kHeaderRecord, newer.SerializeAsString()}}))
                  .ok());
  EXPECT_THAT(Msg(ReadCheckpoint(dir + "/newer.pth").status()),
              HasSubstr("format version 9; this build reads up to 2"));
  EXPECT_THAT(Msg(ReadHeader(dir + "/newer.pth").status()), HasSubstr("format version 9"));
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/torch.pth", SerializeTorchZip(empty, {})).ok());
  EXPECT_THAT(Msg(ReadCheckpoint(dir + "/torch.pth").status()),
              HasSubstr("is not a convnextv2 checkpoint (a PyTorch zip file without the "
                        "convnextv2/header.pb record)"));
  EXPECT_FALSE(LooksLikeCheckpoint(dir + "/torch.pth"));

  EXPECT_FALSE(WriteCheckpoint("/proc/no/such/dir/c.pth", Golden()).ok());
}

// A process killed at any instant of a save leaves the previous checkpoint readable and never
// a partial file under the checkpoint's name.
TEST(FileTest, KillDuringSaveLeavesAValidCheckpoint) {
  const std::string dir = TmpDir("kill");
  const std::string path = dir + "/checkpoint-1.pth";
  Checkpoint small = Golden();
  Checkpoint big = Golden();
  big.Add("model.big", at::ones({4 << 20}, at::kFloat));  // 16 MiB: the write takes a while
  ASSERT_TRUE(WriteCheckpoint(path, small).ok());
  const std::string big_bytes = SerializeCheckpoint(big);
  for (int round = 0; round < 6; ++round) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) util::WriteFileAtomically(path, big_bytes).IgnoreError();
    }
    usleep(5000 + 7000 * round);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    absl::StatusOr<Checkpoint> c = ReadCheckpoint(path);
    ASSERT_TRUE(c.ok()) << "round " << round << ": " << c.status();
    EXPECT_TRUE(c->tensors.size() == small.tensors.size() ||
                c->tensors.size() == big.tensors.size());
  }
  // The killed saves' temporary files are never taken for checkpoints.
  absl::StatusOr<std::optional<Found>> found = FindNewestValid(dir);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->path, path);
  EXPECT_TRUE((*found)->skipped.empty());
}

Checkpoint AtPosition(int next_epoch, int64_t next_step) {
  Checkpoint c = Golden();
  c.header.set_next_epoch(next_epoch);
  c.header.set_next_step(next_step);
  return c;
}

TEST(PolicyTest, NamesAndFirstLaunch) {
  EXPECT_EQ(EpochPath("/r", 4), "/r/checkpoint-4.pth");
  EXPECT_EQ(StepPath("/r", 4, 120), "/r/checkpoint-4-step120.pth");
  EXPECT_EQ(BestPath("/r", false), "/r/checkpoint-best.pth");
  EXPECT_EQ(BestPath("/r", true), "/r/checkpoint-best-ema.pth");
  const std::string dir = TmpDir("empty");
  absl::StatusOr<std::optional<Found>> found = FindNewestValid(dir);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  found = FindNewestValid(dir + "/not_created_yet");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST(PolicyTest, AutoResumeTakesNewestValidByPosition) {
  const std::string dir = TmpDir("choose");
  ASSERT_TRUE(WriteCheckpoint(EpochPath(dir, 0), AtPosition(1, 0)).ok());
  ASSERT_TRUE(WriteCheckpoint(EpochPath(dir, 1), AtPosition(2, 0)).ok());
  ASSERT_TRUE(WriteCheckpoint(StepPath(dir, 2, 5), AtPosition(2, 5)).ok());
  Checkpoint best = Golden();
  best.header.set_kind("weights");
  ASSERT_TRUE(WriteCheckpoint(BestPath(dir, false), best).ok());
  auto found = FindNewestValid(dir);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->path, StepPath(dir, 2, 5));  // by header position, not by file time

  // The newest one truncated (a crash while copying it, say): reported and skipped.
  std::string bytes = *util::ReadFile(StepPath(dir, 2, 5));
  ASSERT_TRUE(util::WriteFileAtomically(StepPath(dir, 2, 5), bytes.substr(0, bytes.size() - 20)).ok());
  found = FindNewestValid(dir);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->path, EpochPath(dir, 1));
  ASSERT_EQ((*found)->skipped.size(), 1u);
  EXPECT_THAT((*found)->skipped[0], HasSubstr("checkpoint-2-step5.pth: truncated"));

  // Every candidate corrupt: an error, never a silent restart from scratch.
  for (const std::string& p : {EpochPath(dir, 0), EpochPath(dir, 1)}) {
    const std::string b = *util::ReadFile(p);
    ASSERT_TRUE(util::WriteFileAtomically(p, Flip(b, TensorOffset(b))).ok());
  }
  found = FindNewestValid(dir);
  ASSERT_FALSE(found.ok());
  EXPECT_THAT(Msg(found.status()), HasSubstr("no valid checkpoint"));
  EXPECT_THAT(Msg(found.status()), HasSubstr("checksum mismatch"));
}

TEST(PolicyTest, RetentionKeepsNewestEpochs) {
  const std::string dir = TmpDir("retention");
  for (int e = 0; e < 5; ++e) ASSERT_TRUE(WriteCheckpoint(EpochPath(dir, e), AtPosition(e + 1, 0)).ok());
  ASSERT_TRUE(WriteCheckpoint(StepPath(dir, 5, 2), AtPosition(5, 2)).ok());
  ASSERT_TRUE(WriteCheckpoint(BestPath(dir, false), Golden()).ok());
  EXPECT_EQ(PruneEpochCheckpoints(dir, 3).size(), 2u);
  EXPECT_FALSE(fs::exists(EpochPath(dir, 0)));
  EXPECT_FALSE(fs::exists(EpochPath(dir, 1)));
  EXPECT_TRUE(fs::exists(EpochPath(dir, 2)));
  EXPECT_TRUE(fs::exists(EpochPath(dir, 4)));
  EXPECT_TRUE(fs::exists(BestPath(dir, false)));
  EXPECT_EQ(RemoveStepCheckpoints(dir).size(), 1u);
  EXPECT_TRUE(fs::exists(EpochPath(dir, 4)));
}

TEST(StateTest, OptimizerStateRoundTripsByName) {
  torch::manual_seed(0);
  torch::nn::Linear a(3, 2), b(3, 2);
  torch::optim::AdamW opt_a(a->parameters(), torch::optim::AdamWOptions(0.1));
  torch::optim::AdamW opt_b(b->parameters(), torch::optim::AdamWOptions(0.1));
  const at::Tensor x = torch::randn({4, 3});
  auto step = [&](torch::nn::Linear& m, torch::optim::AdamW& o) {
    o.zero_grad();
    m->forward(x).pow(2).sum().backward();
    o.step();
  };
  step(a, opt_a);
  step(a, opt_a);
  Checkpoint c;
  AddModule(*a, "model.", &c);
  const optim::AlgorithmOps& ops = optim::OpsOf(optim::Algorithm::kAdamW);
  AddOptimizer(opt_a, ops, a->named_parameters(), "optimizer.", &c);
  ASSERT_NE(c.Find("optimizer.weight.exp_avg_sq"), nullptr);
  EXPECT_EQ(c.Find("optimizer.bias.step")->item<int64_t>(), 2);
  absl::StatusOr<Checkpoint> back = ParseCheckpoint(SerializeCheckpoint(c), "mem");
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(LoadModule(*back, "model.", *b, /*strict=*/true, "mem").ok());
  ASSERT_TRUE(LoadOptimizer(*back, "optimizer.", b->named_parameters(), ops, opt_b).ok());
  step(a, opt_a);
  step(b, opt_b);
  EXPECT_TRUE(at::equal(a->weight, b->weight));
  EXPECT_TRUE(at::equal(a->bias, b->bias));

  torch::nn::Linear wrong(4, 2);
  absl::Status s = LoadModule(*back, "model.", *wrong, /*strict=*/true, "checkpoint x");
  EXPECT_THAT(Msg(s), HasSubstr("weight (2, 3) vs model (2, 4)"));
}

// The optimizer fields are a file format: each algorithm row writes exactly the names and types
// checkpoints have held (<param>.step int64 scalar, exp_avg, exp_avg_sq, max_exp_avg_sq with
// amsgrad; momentum_buffer for SGD), and a checkpoint laid out that way by hand loads bitwise.
TEST(StateTest, OptimizerFieldsOfEachAlgorithmAsFilesHoldThem) {
  torch::manual_seed(1);
  torch::nn::Linear m(3, 2);
  const at::Tensor x = torch::randn({4, 3});
  auto fields_after_two_steps = [&](torch::optim::Optimizer& o, const optim::AlgorithmOps& ops) {
    for (int i = 0; i < 2; ++i) {
      o.zero_grad();
      m->forward(x).pow(2).sum().backward();
      o.step();
    }
    Checkpoint c;
    AddOptimizer(o, ops, m->named_parameters(), "optimizer.", &c);
    std::map<std::string, at::Tensor> out;
    for (auto& [name, t] : c.WithPrefix("optimizer.")) out[name] = t;
    return out;
  };
  torch::optim::Adam adam(m->parameters(), torch::optim::AdamOptions(0.1).amsgrad(true));
  auto a = fields_after_two_steps(adam, optim::OpsOf(optim::Algorithm::kAdam));
  std::vector<std::string> names;
  for (const auto& [name, t] : a) names.push_back(name);
  EXPECT_THAT(names, testing::ElementsAre("bias.exp_avg", "bias.exp_avg_sq", "bias.max_exp_avg_sq",
                                          "bias.step", "weight.exp_avg", "weight.exp_avg_sq",
                                          "weight.max_exp_avg_sq", "weight.step"));
  EXPECT_EQ(a["weight.step"].scalar_type(), at::kLong);
  EXPECT_EQ(a["weight.step"].dim(), 0);
  EXPECT_EQ(a["weight.step"].item<int64_t>(), 2);
  torch::optim::SGD sgd(m->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  auto g = fields_after_two_steps(sgd, optim::OpsOf(optim::Algorithm::kSgd));
  names.clear();
  for (const auto& [name, t] : g) names.push_back(name);
  EXPECT_THAT(names, testing::ElementsAre("bias.momentum_buffer", "weight.momentum_buffer"));

  // A checkpoint in that layout, written by hand: AdamW state restores bitwise.
  Checkpoint old;
  const at::Tensor avg = torch::randn({2, 3}), sq = torch::rand({2, 3});
  old.Add("optimizer.weight.step", at::scalar_tensor(7, at::kLong));
  old.Add("optimizer.weight.exp_avg", avg);
  old.Add("optimizer.weight.exp_avg_sq", sq);
  absl::StatusOr<Checkpoint> back = ParseCheckpoint(SerializeCheckpoint(old), "old");
  ASSERT_TRUE(back.ok()) << back.status();
  torch::optim::AdamW adamw(m->parameters(), torch::optim::AdamWOptions(0.1));
  const optim::AlgorithmOps& ops = optim::OpsOf(optim::Algorithm::kAdamW);
  ASSERT_TRUE(LoadOptimizer(*back, "optimizer.", m->named_parameters(), ops, adamw).ok());
  Checkpoint again;
  AddOptimizer(adamw, ops, m->named_parameters(), "optimizer.", &again);
  EXPECT_EQ(again.Find("optimizer.weight.step")->item<int64_t>(), 7);
  EXPECT_TRUE(at::equal(*again.Find("optimizer.weight.exp_avg"), avg));
  EXPECT_TRUE(at::equal(*again.Find("optimizer.weight.exp_avg_sq"), sq));
  EXPECT_EQ(again.Find("optimizer.weight.max_exp_avg_sq"), nullptr);
  EXPECT_EQ(again.Find("optimizer.bias.step"), nullptr);  // no state saved: none restored

  // Errors name the parameter and the field.
  Checkpoint lacking;
  lacking.Add("optimizer.weight.exp_avg", avg);
  lacking.Add("optimizer.weight.exp_avg_sq", sq);
  EXPECT_EQ(Msg(LoadOptimizer(lacking, "optimizer.", m->named_parameters(), ops, adamw)),
            "optimizer state of weight lacks step");
  Checkpoint wrong;
  wrong.Add("optimizer.weight.momentum_buffer", torch::zeros({3, 2}));
  EXPECT_EQ(Msg(LoadOptimizer(wrong, "optimizer.", m->named_parameters(),
                              optim::OpsOf(optim::Algorithm::kSgd), sgd)),
            "optimizer state weight.momentum_buffer has shape (3, 2), the parameter (2, 3)");
}

TEST(StateTest, RngStateRestores) {
  Checkpoint c;
  torch::manual_seed(3);
  AddRngStates(&c);
  const at::Tensor first = torch::rand({5});
  torch::manual_seed(99);
  ASSERT_TRUE(RestoreRngStates(c).ok());
  EXPECT_TRUE(at::equal(first, torch::rand({5})));
}

models::ConvNeXtV2 Atto(int classes) {
  torch::manual_seed(1);
  return *models::CreateConvNeXtV2("convnextv2_atto", classes, 0.0, 1.0);
}

// An FCMAE checkpoint as the official sparse (MinkowskiEngine) encoder names and lays it out,
// made from a dense model by inverting the documented remap.
TensorMap SparseStyle(const TensorMap& dense) {
  TensorMap out;
  for (const auto& [name, v] : dense) {
    if (name.rfind("head.", 0) == 0 || name.rfind("norm.", 0) == 0) continue;  // no head in FCMAE
    std::string k = "encoder." + name;
    at::Tensor t = v.clone();
    const bool block = name.rfind("stages.", 0) == 0;
    const bool down = name.rfind("downsample_layers.", 0) == 0 && name[18] != '0';
    if (block && name.find(".dwconv.weight") != std::string::npos) {
      k = k.substr(0, k.size() - 6) + "kernel";  // (C,1,k,k) -> (k*k, C)
      t = v.transpose(3, 2).reshape({v.size(0), -1}).permute({1, 0}).contiguous();
    } else if (down && v.dim() == 4) {
      k = k.substr(0, k.size() - 6) + "kernel";  // (Cout,Cin,k,k) -> (k*k, Cin, Cout)
      t = v.transpose(3, 2).reshape({v.size(0), v.size(1), -1}).permute({2, 1, 0}).contiguous();
    } else if (block && name.find(".grn.") != std::string::npos) {
      t = v.reshape({1, -1});
    } else if ((block && name.find(".norm.") != std::string::npos) ||
               (down && name.find(".0.") != std::string::npos)) {
      k.insert(k.rfind('.'), ".ln");
    } else if (block && name.find(".pwconv") != std::string::npos) {
      k.insert(k.rfind('.'), ".linear");
    }
    if (block && name.find(".dwconv.bias") != std::string::npos) t = v.reshape({1, -1});
    out[k] = t;
  }
  out["mask_token"] = at::zeros({1, 320, 1, 1});
  out["proj.weight"] = at::zeros({512, 320, 1, 1});
  out["decoder.0.dwconv.weight"] = at::zeros({512, 1, 7, 7});
  out["pred.weight"] = at::zeros({3072, 512, 1, 1});
  return out;
}

TEST(PretrainedTest, FcmaeRemapRestoresTheDenseModel) {
  models::ConvNeXtV2 source = Atto(1000);
  const TensorMap dense = ModuleState(*source);
  const TensorMap remapped = RemapFcmaeKeys(SparseStyle(dense));
  int checked = 0;
  for (const auto& [name, v] : dense) {
    if (name.rfind("head.", 0) == 0 || name.rfind("norm.", 0) == 0) continue;
    auto it = remapped.find(name);
    ASSERT_NE(it, remapped.end()) << name;
    EXPECT_TRUE(at::equal(it->second, v)) << name;
    ++checked;
  }
  EXPECT_GT(checked, 100);

  // The whole --finetune path from an OutputArchive (what `pretrain` writes for now).
  const std::string dir = TmpDir("fcmae");
  torch::serialize::OutputArchive archive;
  for (const auto& [name, v] : SparseStyle(dense)) archive.write(name, v);
  archive.save_to(dir + "/fcmae.pt");
  models::ConvNeXtV2 target = Atto(10);
  absl::StatusOr<PretrainedReport> r =
      InitFromPretrained(dir + "/fcmae.pt", "model|module", "", *target, /*reinit_head=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->format, "OutputArchive");
  EXPECT_THAT(r->dropped, ::testing::UnorderedElementsAre("mask_token", "proj.weight",
                                                          "decoder.0.dwconv.weight", "pred.weight"));
  EXPECT_THAT(r->load.missing, ::testing::UnorderedElementsAre("norm.weight", "norm.bias",
                                                               "head.weight", "head.bias"));
  EXPECT_TRUE(r->load.unexpected.empty()) << r->load.unexpected.front();
  EXPECT_TRUE(at::equal(target->stages[3]->named_parameters()["0.grn.gamma"],
                        source->stages[3]->named_parameters()["0.grn.gamma"]));
  EXPECT_TRUE(r->head_reinitialized);
  EXPECT_LT(target->head->weight.abs().max().item<double>(), 2e-4);  // std 2e-5
  EXPECT_EQ(target->head->bias.abs().sum().item<double>(), 0.0);
}

TEST(PretrainedTest, BadFilesGiveClearErrors) {
  const std::string dir = TmpDir("bad_pretrained");
  models::ConvNeXtV2 model = Atto(10);
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/x.pth", "not weights").ok());
  EXPECT_THAT(Msg(InitFromPretrained(dir + "/x.pth", "model", "", *model, true).status()),
              HasSubstr("is not a checkpoint"));
  EXPECT_THAT(Msg(InitFromPretrained(dir + "/none.pth", "model", "", *model, true).status()),
              HasSubstr("no such file"));
  Checkpoint c;
  AddModule(*model, "model.", &c);
  ASSERT_TRUE(WriteCheckpoint(dir + "/ours.pth", c).ok());
  EXPECT_THAT(Msg(InitFromPretrained(dir + "/ours.pth", "model_ema", "", *model, true).status()),
              HasSubstr("has no 'model_ema' weights"));
  EXPECT_THAT(Msg(InitFromPretrained(dir + "/ours.pth", "model", "module.", *model, true).status()),
              HasSubstr("no tensor matches the model"));
}

// Both directions with PyTorch itself (Debian's python3-torch as the oracle).
TEST(PretrainedTest, PyTorchFilesBothWays) {
  // Looks for the package without importing it (an import takes seconds).
  if (std::system("/usr/bin/python3 -c 'import importlib.util as u, sys; "
                  "sys.exit(u.find_spec(\"torch\") is None)' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-torch is not installed (tools/setup.sh installs it)";
  }
  const std::string dir = TmpDir("pytorch");
  models::ConvNeXtV2 model = Atto(10);
  ASSERT_TRUE(ExportForPyTorch(*model, dir + "/exported.pth").ok());
  const std::string cmd = "/usr/bin/python3 tests/checkpoint/pytorch_fixture.py " + dir +
                          "/exported.pth " + dir;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  // Python saw every tensor under its official name and shape.
  std::ifstream summary(dir + "/summary.txt");
  std::string line;
  int lines = 0;
  while (std::getline(summary, line)) ++lines;
  EXPECT_EQ(lines, static_cast<int>(ModuleState(*model).size()));
  const std::string listed = *util::ReadFile(dir + "/summary.txt");
  EXPECT_THAT(listed, HasSubstr("stages.3.1.grn.gamma 1x1x1x1280\n"));
  EXPECT_THAT(listed, HasSubstr("downsample_layers.0.0.weight 40x3x4x4\n"));

  // PyTorch's own files get their records' CRC-32s checked too.
  {
    const at::Tensor bias = ModuleState(*model).at("head.bias") * 2 + 1;
    const std::string official = *util::ReadFile(dir + "/official.pth");
    const size_t at = official.find(std::string(static_cast<const char*>(bias.data_ptr()), 40));
    ASSERT_NE(at, std::string::npos);
    ASSERT_TRUE(util::WriteFileAtomically(dir + "/flipped.pth", Flip(official, at + 3)).ok());
    models::ConvNeXtV2 loaded = Atto(10);
    absl::Status s = InitFromPretrained(dir + "/flipped.pth", "model", "", *loaded, false).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(Msg(s), HasSubstr(dir + "/flipped.pth: checksum mismatch in record data/"));
  }
  for (const char* file : {"official.pth", "bare.pth"}) {
    models::ConvNeXtV2 loaded = Atto(10);
    absl::StatusOr<PretrainedReport> r =
        InitFromPretrained(dir + "/" + file, "model|module", "", *loaded, /*reinit_head=*/false);
    ASSERT_TRUE(r.ok()) << file << ": " << r.status();
    EXPECT_EQ(r->format, "PyTorch zip");
    EXPECT_TRUE(r->load.missing.empty() && r->load.unexpected.empty()) << file;
    const TensorMap want = ModuleState(*model);
    for (const auto& [name, v] : ModuleState(*loaded)) {
      EXPECT_TRUE(at::equal(v, want.at(name) * 2 + 1)) << file << " " << name;
    }
  }
}

}  // namespace
}  // namespace convnextv2::checkpoint
