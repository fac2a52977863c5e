// The ONNX graph of a tiny ConvNeXtV2 without running it: the node list per op type, the fp16
// GRN's casts, initializers (names, types, values), the checker's acceptance and shape
// inference, and the errors of bad options and paths. Needs no Python.
#include "convnextv2/onnx/onnx_graph.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "convnextv2/models/registry.h"
#include "convnextv2/onnx/convnextv2_graph.h"
#include "convnextv2/onnx/onnx_export.h"
#include "convnextv2/util/fault_points.h"
#include "convnextv2/util/files.h"
#include "onnx/onnx_pb.h"

namespace convnextv2::onnx_export {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

models::ConvNeXtV2 TinyModel(int64_t in_chans = 3) {
  at::manual_seed(0);
  absl::StatusOr<models::ConvNeXtV2Options> o = models::VariantOptions(models::kTestVariant);
  CHECK(o.ok()) << o.status();
  return models::ConvNeXtV2(o->num_classes(10).in_chans(in_chans));
}

onnx::ModelProto Export(const models::ConvNeXtV2& model, const OnnxOptions& options) {
  absl::StatusOr<std::string> bytes = OnnxModelBytes(model, options);
  CHECK(bytes.ok()) << bytes.status();
  onnx::ModelProto proto;
  CHECK(proto.ParseFromString(*bytes));
  return proto;
}

std::map<std::string, int> OpCounts(const onnx::ModelProto& m) {
  std::map<std::string, int> counts;
  for (const onnx::NodeProto& n : m.graph().node()) ++counts[n.op_type()];
  return counts;
}

const onnx::TensorProto& FindInitializer(const onnx::ModelProto& m, const std::string& name) {
  for (const onnx::TensorProto& t : m.graph().initializer()) {
    if (t.name() == name) return t;
  }
  LOG(FATAL) << "no initializer " << name;
}

// The element type shape inference gave the value `name` (it must be in value_info).
int InferredType(const onnx::ModelProto& m, const std::string& name) {
  for (const onnx::ValueInfoProto& v : m.graph().value_info()) {
    if (v.name() == name) return v.type().tensor_type().elem_type();
  }
  return -1;
}

OnnxOptions Fp16(bool naive = false) {
  OnnxOptions o;
  o.precision = OnnxPrecision::kFloat16;
  o.naive_fp16_grn = naive;
  return o;
}

// convnextv2_test: depths 1-1-2-1, so 5 blocks. Per block 23 nodes: Conv, 2 Transpose,
// LayerNormalization, 2 MatMul, 7 Add (2 biases, GELU's 1 +, GRN's eps, beta and residual, the
// block's residual), 2 Div (GELU, GRN), Erf, 4 Mul (GELU 2, GRN 2), ReduceSumSquare, Sqrt,
// ReduceMean. Stem and 3 downsampling layers 4 each (Conv, LN between 2 Transposes), head 3.
TEST(OnnxGraphTest, Fp32NodesOfTheTinyModel) {
  const onnx::ModelProto m = Export(TinyModel(), OnnxOptions());
  EXPECT_EQ(m.ir_version(), 8);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.opset_import(0).version(), 17);
  EXPECT_EQ(m.graph().node_size(), 5 * 23 + 4 * 4 + 3);
  const std::map<std::string, int> expected = {{"Add", 5 * 7},
                                               {"Conv", 5 + 4},
                                               {"Div", 5 * 2},
                                               {"Erf", 5},
                                               {"Gemm", 1},
                                               {"MatMul", 5 * 2},
                                               {"Mul", 5 * 4},
                                               {"ReduceMean", 5 + 1},
                                               {"Sqrt", 5},
                                               {"ReduceSumSquare", 5},
                                               {"Transpose", 5 * 2 + 4 * 2},
                                               {"LayerNormalization", 5 + 4 + 1}};
  EXPECT_EQ(OpCounts(m), expected);
  // The depthwise convolution has one group per channel (stage 2 has 32).
  int64_t groups = 0;
  for (const onnx::NodeProto& n : m.graph().node()) {
    if (n.name() != "stages.2.1.dwconv") continue;
    EXPECT_EQ(n.op_type(), "Conv");
    for (const onnx::AttributeProto& a : n.attribute()) {
      if (a.name() == "group") groups = a.i();
    }
  }
  EXPECT_EQ(groups, 32);
  // Dynamic batch, height and width; 10 logits.
  const auto& in = m.graph().input(0).type().tensor_type();
  EXPECT_EQ(m.graph().input(0).name(), "pixel_values");
  EXPECT_EQ(in.elem_type(), onnx::TensorProto::FLOAT);
  ASSERT_EQ(in.shape().dim_size(), 4);
  EXPECT_EQ(in.shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(in.shape().dim(1).dim_value(), 3);
  EXPECT_EQ(in.shape().dim(2).dim_param(), "height");
  const auto& out = m.graph().output(0).type().tensor_type();
  EXPECT_EQ(m.graph().output(0).name(), "logits");
  EXPECT_EQ(out.shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(out.shape().dim(1).dim_value(), 10);
  // 70 parameters and the 4 shared constants (GELU's sqrt 2, 1, 0.5; GRN's eps).
  EXPECT_EQ(m.graph().initializer_size(), 74);
  EXPECT_EQ(InferredType(m, "stages.0.0.grn.sumsq"), onnx::TensorProto::FLOAT);
}

TEST(OnnxGraphTest, InitializersAreTheModelsWeights) {
  models::ConvNeXtV2 model = TinyModel();
  const onnx::ModelProto m = Export(model, OnnxOptions());
  const onnx::TensorProto& w = FindInitializer(m, "stages.1.0.pwconv1.weight_t");
  ASSERT_EQ(w.dims_size(), 2);
  EXPECT_EQ(w.dims(0), 16);  // stored transposed for MatMul: (C, 4C)
  EXPECT_EQ(w.dims(1), 64);
  const at::Tensor expected =
      model->named_parameters()["stages.1.0.pwconv1.weight"].t().contiguous();
  ASSERT_EQ(w.raw_data().size(), expected.nbytes());
  EXPECT_EQ(std::memcmp(w.raw_data().data(), expected.data_ptr(), expected.nbytes()), 0);
  const onnx::TensorProto& dw = FindInitializer(m, "stages.0.0.dwconv.weight");
  EXPECT_EQ(std::vector<int64_t>(dw.dims().begin(), dw.dims().end()),
            (std::vector<int64_t>{8, 1, 7, 7}));
  const at::Tensor dw_expected = model->named_parameters()["stages.0.0.dwconv.weight"].contiguous();
  EXPECT_EQ(std::memcmp(dw.raw_data().data(), dw_expected.data_ptr(), dw_expected.nbytes()), 0);
}

// fp16: every weight in half precision but GRN's fp32 eps; 2 Casts per GRN, and shape inference
// says GRN's sum of squares is fp32. The naive graph has no Cast and an fp16 sum of squares.
TEST(OnnxGraphTest, Fp16GraphComputesGrnStatisticsInFp32) {
  models::ConvNeXtV2 model = TinyModel();
  const onnx::ModelProto m = Export(model, Fp16());
  EXPECT_EQ(m.graph().node_size(), 5 * 23 + 4 * 4 + 3 + 5 * 2);
  EXPECT_EQ(OpCounts(m)["Cast"], 10);
  EXPECT_EQ(m.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT16);
  EXPECT_EQ(m.graph().output(0).type().tensor_type().elem_type(), onnx::TensorProto::FLOAT16);
  for (const onnx::TensorProto& t : m.graph().initializer()) {
    const int want =
        t.name() == "grn.eps.fp32" ? onnx::TensorProto::FLOAT : onnx::TensorProto::FLOAT16;
    EXPECT_EQ(t.data_type(), want) << t.name();
  }
  EXPECT_EQ(InferredType(m, "stages.0.0.grn.sumsq"), onnx::TensorProto::FLOAT);
  EXPECT_EQ(InferredType(m, "stages.0.0.grn.nx"), onnx::TensorProto::FLOAT);
  EXPECT_EQ(InferredType(m, "stages.0.0.grn.x_nx"), onnx::TensorProto::FLOAT16);
  const onnx::TensorProto& head = FindInitializer(m, "head.weight");
  const at::Tensor half = model->head->weight.to(at::kHalf).contiguous();
  ASSERT_EQ(head.raw_data().size(), half.nbytes());
  EXPECT_EQ(std::memcmp(head.raw_data().data(), half.data_ptr(), half.nbytes()), 0);

  const onnx::ModelProto naive = Export(model, Fp16(/*naive=*/true));
  EXPECT_EQ(OpCounts(naive).count("Cast"), 0u);
  EXPECT_EQ(InferredType(naive, "stages.0.0.grn.sumsq"), onnx::TensorProto::FLOAT16);
  EXPECT_EQ(FindInitializer(naive, "grn.eps.fp16").data_type(), onnx::TensorProto::FLOAT16);
}

TEST(OnnxGraphTest, NormalizeInsideSubtractsAndDivides) {
  const onnx::ModelProto m = Export(TinyModel(), [] {
    OnnxOptions o;
    o.normalize_inside = true;
    return o;
  }());
  ASSERT_GE(m.graph().node_size(), 2);
  EXPECT_EQ(m.graph().node(0).op_type(), "Sub");
  EXPECT_EQ(m.graph().node(0).input(0), "pixel_values");
  EXPECT_EQ(m.graph().node(1).op_type(), "Div");
  const onnx::TensorProto& mean = FindInitializer(m, "normalize.mean");
  float v[3];
  ASSERT_EQ(mean.raw_data().size(), sizeof(v));
  std::memcpy(v, mean.raw_data().data(), sizeof(v));
  EXPECT_FLOAT_EQ(v[0], 0.485f);
  EXPECT_FLOAT_EQ(v[2], 0.406f);
}

TEST(OnnxGraphTest, BadOptions) {
  OnnxOptions o;
  o.opset = 18;
  absl::StatusOr<std::string> r = OnnxModelBytes(TinyModel(), o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("opset 18"));
  OnnxOptions n;
  n.normalize_inside = true;
  r = OnnxModelBytes(TinyModel(/*in_chans=*/1), n);
  EXPECT_THAT(r.status().message(), HasSubstr("1 input channels"));
  OnnxOptions naive;
  naive.naive_fp16_grn = true;
  EXPECT_FALSE(OnnxModelBytes(TinyModel(), naive).ok());
  EXPECT_THAT(ParseOnnxPrecision("fp8").status().message(), HasSubstr("'fp8' is not one of"));
  models::ConvNeXtV2 big = TinyModel();
  {
    c10::NoGradGuard no_grad;
    big->named_parameters()["stages.1.0.grn.beta"][0][0][0][3] = -7e4;
  }
  EXPECT_TRUE(OnnxModelBytes(big, OnnxOptions()).ok());
  r = OnnxModelBytes(big, Fp16());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("parameter stages.1.0.grn.beta has |value| up to 70000"));
  EXPECT_EQ(*ParseOnnxPrecision("fp16"), OnnxPrecision::kFloat16);
}

// The check is the full one: besides schemas and versions, strict shape inference refuses a
// type mismatch between nodes, which check_model alone lets through.
TEST(OnnxGraphTest, CheckerRefusesBrokenGraphs) {
  const models::ConvNeXtV2 model = TinyModel();
  auto broken = [&](const std::function<void(onnx::ModelProto&)>& edit) {
    absl::StatusOr<onnx::ModelProto> m = BuildOnnxModel(model, Fp16());
    CHECK(m.ok()) << m.status();
    onnx::ModelProto copy = *m;
    EXPECT_TRUE(CheckOnnxModel(copy).ok());
    edit(*m);
    return CheckOnnxModel(*m);
  };
  absl::Status s = broken([](onnx::ModelProto& m) { m.set_ir_version(9); });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("ir_version"));
  // Gelu is an opset-20 operator.
  s = broken([](onnx::ModelProto& m) { m.mutable_graph()->mutable_node(20)->set_op_type("Gelu"); });
  EXPECT_THAT(s.message(), HasSubstr("Gelu"));
  // GRN's fp32 eps declared fp16: Add(fp32 mean, fp16 eps).
  s = broken([](onnx::ModelProto& m) {
    for (onnx::TensorProto& t : *m.mutable_graph()->mutable_initializer()) {
      if (t.name() == "grn.eps.fp32") {
        t.set_data_type(onnx::TensorProto::FLOAT16);
        t.set_raw_data(std::string(2, '\0'));
      }
    }
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("refused"));
}

std::string TmpDir(const std::string& name) {
  const std::string d = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(OnnxGraphTest, WriteOnnxRefusesExistingPathsAndLeavesNothingOnFailure) {
  const std::string dir = TmpDir("write");
  const models::ConvNeXtV2 model = TinyModel();
  const std::string path = dir + "/m.onnx";
  ASSERT_TRUE(WriteOnnx(model, OnnxOptions(), path).ok());
  onnx::ModelProto read;
  ASSERT_TRUE(read.ParseFromString(*util::ReadFile(path)));
  EXPECT_EQ(read.graph().output(0).name(), "logits");

  // An existing file is refused and kept as it was.
  ASSERT_TRUE(util::WriteFileAtomically(dir + "/keep.onnx", "mine").ok());
  absl::Status s = WriteOnnx(model, OnnxOptions(), dir + "/keep.onnx");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr(dir + "/keep.onnx: exists"));
  EXPECT_EQ(*util::ReadFile(dir + "/keep.onnx"), "mine");

  // Unwritable: a path below a regular file (ENOTDIR, even as root).
  s = WriteOnnx(model, OnnxOptions(), dir + "/keep.onnx/m.onnx");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(dir + "/keep.onnx/m.onnx"));

  // A disk that fills up while writing: no file, no temporary left behind.
  setenv("CONVNEXTV2_FAULT_ERRNO", "atomic_write:1", 1);
  util::ReloadFaultConfig();
  s = WriteOnnx(model, OnnxOptions(), dir + "/full.onnx");
  unsetenv("CONVNEXTV2_FAULT_ERRNO");
  util::ReloadFaultConfig();
  EXPECT_THAT(s.message(), HasSubstr("No space left"));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename());
  EXPECT_THAT(files, ::testing::UnorderedElementsAre("m.onnx", "keep.onnx"));
  EXPECT_FALSE(fs::exists(dir + "/full.onnx"));
}

TEST(GraphBuilderTest, NamesDimsAndInitializers) {
  onnx::GraphProto graph;
  GraphBuilder g(&graph);
  g.Input("x", onnx::TensorProto::FLOAT16, {"batch", "4"});
  const uint16_t half_one[2] = {0x3c00, 0x3c00};
  g.Initializer("w", onnx::TensorProto::FLOAT16, {2}, {reinterpret_cast<const char*>(half_one), 4});
  EXPECT_EQ(g.Node("Mul", "y", {"x", "w"}), "y");
  g.Output("y", onnx::TensorProto::FLOAT16, {"batch", "4"});
  EXPECT_EQ(graph.input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(graph.input(0).type().tensor_type().shape().dim(1).dim_value(), 4);
  EXPECT_EQ(graph.node(0).output(0), "y");
  EXPECT_EQ(g.InitializerBytes(), 4);
  EXPECT_DEATH(g.Node("Add", "y", {"x", "w"}), "value y defined twice");
  EXPECT_DEATH(g.Node("Add", "z", {"x", "nope"}), "input nope is not defined");
  EXPECT_DEATH(g.Initializer("v", onnx::TensorProto::FLOAT, {3}, "abcd"), "does not match");
}

}  // namespace
}  // namespace convnextv2::onnx_export
