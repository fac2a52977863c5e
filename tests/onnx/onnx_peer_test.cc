// The exported ONNX files run in the real packages (the peer venv's onnx and onnxruntime,
// tools/bench/peer_setup.sh): this test writes a tiny model's graphs, inputs and the toolkit's
// eval logits, and onnx_oracle.py checks them (what it checks is described there). Skips, and
// says so, without the venv.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/onnx/onnx_export.h"
#include "convnextv2/util/files.h"

namespace convnextv2::onnx_export {
namespace {

namespace fs = std::filesystem;

constexpr char kPeerPython[] = "/opt/convnextv2-peer/bin/peer-python";
constexpr char kPeerReady[] = "/opt/convnextv2-peer/.ready";

// A float32 tensor as a .npy file (format 1.0), for numpy.load.
void WriteNpy(const std::string& path, const at::Tensor& t) {
  const at::Tensor c = t.to(at::kFloat).contiguous();
  std::string header =
      absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (",
                   absl::StrJoin(c.sizes(), ", "), c.dim() == 1 ? ",), }" : "), }");
  header.append(63 - (10 + header.size()) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY\x01";
  out.push_back('\0');
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  out.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
  ASSERT_TRUE(util::WriteFileAtomically(path, out).ok()) << path;
}

// Weights that make every layer matter: convolutions and linears at 1 / sqrt(fan_in), LayerNorm
// weights near 1, biases and GRN's gamma and beta (zeros at init) of order 0.2.
void Randomize(models::ConvNeXtV2& model) {
  c10::NoGradGuard no_grad;
  at::manual_seed(1);
  for (auto& item : model->named_parameters()) {
    at::Tensor& p = item.value();
    const std::string& name = item.key();
    const bool grn = name.find(".grn.") != std::string::npos;
    if (p.dim() >= 2 && !grn) {
      p.copy_(at::randn_like(p) / std::sqrt(static_cast<double>(p.numel() / p.size(0))));
    } else if (!grn && name.size() > 7 && name.substr(name.size() - 7) == ".weight") {
      p.copy_(1.0 + 0.2 * at::randn_like(p));
    } else {
      p.copy_(0.2 * at::randn_like(p));
    }
  }
}

at::Tensor Logits(models::ConvNeXtV2& model, const at::Tensor& x) {
  c10::NoGradGuard no_grad;
  model->eval();
  return model->forward(x);
}

void Write(const models::ConvNeXtV2& model, OnnxPrecision precision, bool normalize, bool naive,
           const std::string& path) {
  OnnxOptions o;
  o.precision = precision;
  o.normalize_inside = normalize;
  o.naive_fp16_grn = naive;
  const absl::Status s = WriteOnnx(model, o, path);
  ASSERT_TRUE(s.ok()) << s;
}

TEST(OnnxPeerTest, PackagesRunTheExportedGraphs) {
  if (!fs::exists(kPeerReady)) {
    GTEST_SKIP() << "SKIPPED: the peer venv is absent (" << kPeerReady
                 << " missing; tools/bench/peer_setup.sh makes it)";
  }
  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/onnx_peer";
  fs::remove_all(dir);
  fs::create_directories(dir);
  absl::StatusOr<models::ConvNeXtV2Options> options = models::VariantOptions(models::kTestVariant);
  ASSERT_TRUE(options.ok());
  models::ConvNeXtV2 model(options->num_classes(10));
  Randomize(model);
  at::manual_seed(2);

  // (a) one fp32 file, two batch sizes and image sizes; raw pixels with normalize_inside.
  Write(model, OnnxPrecision::kFloat32, false, false, dir + "/fp32.onnx");
  Write(model, OnnxPrecision::kFloat32, true, false, dir + "/fp32_normalize.onnx");
  for (const auto& [name, batch, size] : {std::tuple{"b2_64", 2, 64}, std::tuple{"b3_96", 3, 96}}) {
    const at::Tensor x = at::randn({batch, 3, size, size});
    WriteNpy(absl::StrCat(dir, "/input_", name, ".npy"), x);
    WriteNpy(absl::StrCat(dir, "/logits_", name, ".npy"), Logits(model, x));
  }
  {
    // A real variant's widths and depths too (convnextv2_atto, 1000 classes).
    absl::StatusOr<models::ConvNeXtV2> atto = models::CreateConvNeXtV2("convnextv2_atto", 1000);
    ASSERT_TRUE(atto.ok()) << atto.status();
    Randomize(*atto);
    Write(*atto, OnnxPrecision::kFloat32, false, false, dir + "/atto_fp32.onnx");
    const at::Tensor x = at::randn({2, 3, 64, 64});
    WriteNpy(dir + "/input_atto_b2_64.npy", x);
    WriteNpy(dir + "/logits_atto_b2_64.npy", Logits(*atto, x));
  }
  const at::Tensor raw = at::rand({2, 3, 64, 64});
  const at::Tensor mean = at::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  const at::Tensor stdev = at::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  WriteNpy(dir + "/raw_b2_64.npy", raw);
  WriteNpy(dir + "/logits_raw_b2_64.npy", Logits(model, (raw - mean) / stdev));

  // (b) LayerNorm precedes every GRN, so no input scale reaches it: the first block's pwconv1
  // is scaled instead (the large activations a trained model can have), to GRN inputs of order 40,
  // whose sums of squares over the 16 x 16 positions of a 64 px image pass 65504 (by up to
  // 13 times, measured); pwconv2 is scaled back so that the residual stream keeps its size.
  {
    c10::NoGradGuard no_grad;
    model->named_parameters()["stages.0.0.pwconv1.weight"].mul_(40.0);
    model->named_parameters()["stages.0.0.pwconv2.weight"].div_(40.0);
  }
  Write(model, OnnxPrecision::kFloat32, false, false, dir + "/overflow_fp32.onnx");
  Write(model, OnnxPrecision::kFloat16, false, false, dir + "/fp16.onnx");
  Write(model, OnnxPrecision::kFloat16, false, true, dir + "/fp16_naive.onnx");
  // The fp16 graph reads an fp16 input: the toolkit's reference sees the same rounded values.
  const at::Tensor x = at::randn({2, 3, 64, 64}).to(at::kHalf).to(at::kFloat);
  WriteNpy(dir + "/input_overflow.npy", x);
  WriteNpy(dir + "/logits_overflow.npy", Logits(model, x));

  const std::string log = dir + "/oracle.log";
  const std::string cmd =
      absl::StrCat(kPeerPython, " tests/onnx/onnx_oracle.py ", dir, " > ", log, " 2>&1");
  const int rc = std::system(cmd.c_str());
  const absl::StatusOr<std::string> out = util::ReadFile(log);
  std::printf("%s\n", out.ok() ? out->c_str() : "(no output)");
  EXPECT_EQ(rc, 0) << "onnx_oracle.py failed:\n" << (out.ok() ? *out : "");
}

}  // namespace
}  // namespace convnextv2::onnx_export
