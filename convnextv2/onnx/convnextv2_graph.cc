#include "convnextv2/onnx/convnextv2_graph.h"

#include <ATen/ATen.h>
#include <glog/logging.h>

#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/models/layers.h"
#include "convnextv2/onnx/onnx_graph.h"

namespace convnextv2::onnx_export {
namespace {

// ImageNet's mean and std, as data::kImagenetMean / kImagenetStd (timm's defaults for ConvNeXt V2).
constexpr std::array<float, 3> kMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kStd = {0.229f, 0.224f, 0.225f};

constexpr double kFp16Max = 65504.0;
constexpr auto kF32 = onnx::TensorProto::FLOAT;
constexpr auto kF16 = onnx::TensorProto::FLOAT16;

const std::vector<int64_t> kToNhwc = {0, 2, 3, 1};
const std::vector<int64_t> kToNchw = {0, 3, 1, 2};

// Builds the graph of one model; every Add* returns the name of the value it produced.
class ModelGraph {
 public:
  ModelGraph(const models::ConvNeXtV2Impl& model, const OnnxOptions& options,
             onnx::GraphProto* graph)
      : model_(model),
        options_(options),
        type_(options.precision == OnnxPrecision::kFloat16 ? kF16 : kF32),
        g_(graph),
        params_(model.named_parameters()),
        modules_(model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {}

  void Build();

 private:
  std::string Tensor(const std::string& name, const at::Tensor& t,
                     onnx::TensorProto::DataType type);
  std::string Weight(const std::string& key);
  std::string Scalar(const std::string& name, float value, onnx::TensorProto::DataType type);
  double Eps(const std::string& module) const;

  std::string AddLayerNorm(const std::string& module, const std::string& x);
  std::string AddChannelsFirstLayerNorm(const std::string& module, const std::string& x);
  std::string AddConv(const std::string& module, const std::string& x, int64_t kernel,
                      int64_t stride, int64_t pad, int64_t groups);
  std::string AddLinear(const std::string& module, const std::string& x);
  std::string AddGelu(const std::string& prefix, const std::string& x);
  std::string AddGrn(const std::string& module, const std::string& x);
  std::string AddBlock(const std::string& module, const std::string& x);
  std::string AddStemAndStages(std::string x);
  std::string AddHead(const std::string& x);

  const models::ConvNeXtV2Impl& model_;
  const OnnxOptions options_;
  const onnx::TensorProto::DataType type_;  // of activations and weights
  GraphBuilder g_;
  const torch::OrderedDict<std::string, at::Tensor> params_;
  const torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>> modules_;
};

std::string ModelGraph::Tensor(const std::string& name, const at::Tensor& t,
                               onnx::TensorProto::DataType type) {
  const at::Tensor c =
      t.detach().to(at::kCPU).to(type == kF16 ? at::kHalf : at::kFloat).contiguous();
  return g_.Initializer(name, type, c.sizes().vec(),
                        {static_cast<const char*>(c.data_ptr()), c.nbytes()});
}

std::string ModelGraph::Weight(const std::string& key) {
  const at::Tensor* t = params_.find(key);
  CHECK(t != nullptr) << "ConvNeXtV2 has no parameter " << key;
  return Tensor(key, *t, type_);
}

// One initializer per (name, value); later uses share it.
std::string ModelGraph::Scalar(const std::string& name, float value,
                               onnx::TensorProto::DataType type) {
  if (g_.Has(name)) return name;
  return Tensor(name, at::scalar_tensor(value, at::kFloat), type);
}

double ModelGraph::Eps(const std::string& module) const {
  const std::shared_ptr<torch::nn::Module>* m = modules_.find(module);
  CHECK(m != nullptr) << "ConvNeXtV2 has no module " << module;
  if (const auto* ln = (*m)->as<models::LayerNormImpl>()) return ln->options.eps();
  const auto* grn = (*m)->as<models::GRNImpl>();
  CHECK(grn != nullptr) << module << " is neither a LayerNorm nor a GRN";
  return grn->options.eps();
}

// Over the last axis, statistics in fp32 (stash_type 1) whatever the precision.
std::string ModelGraph::AddLayerNorm(const std::string& module, const std::string& x) {
  return g_.Node("LayerNormalization", module,
                 {x, Weight(module + ".weight"), Weight(module + ".bias")},
                 {AttrInt("axis", -1), AttrFloat("epsilon", static_cast<float>(Eps(module))),
                  AttrInt("stash_type", 1)});
}

// LayerNormalization over axis 1 would normalize C, H and W together: transpose C last instead.
std::string ModelGraph::AddChannelsFirstLayerNorm(const std::string& module, const std::string& x) {
  const std::string nhwc =
      g_.Node("Transpose", module + ".to_nhwc", {x}, {AttrInts("perm", kToNhwc)});
  const std::string y = AddLayerNorm(module, nhwc);
  return g_.Node("Transpose", module + ".to_nchw", {y}, {AttrInts("perm", kToNchw)});
}

std::string ModelGraph::AddConv(const std::string& module, const std::string& x, int64_t kernel,
                                int64_t stride, int64_t pad, int64_t groups) {
  return g_.Node("Conv", module, {x, Weight(module + ".weight"), Weight(module + ".bias")},
                 {AttrInts("kernel_shape", {kernel, kernel}), AttrInts("strides", {stride, stride}),
                  AttrInts("pads", {pad, pad, pad, pad}), AttrInt("group", groups)});
}

// nn.Linear on the last axis: MatMul by the transposed weight (initializer "<key>_t"), Add bias.
std::string ModelGraph::AddLinear(const std::string& module, const std::string& x) {
  const std::string key = module + ".weight";
  const at::Tensor* w = params_.find(key);
  CHECK(w != nullptr) << "ConvNeXtV2 has no parameter " << key;
  const std::string wt = Tensor(key + "_t", w->t(), type_);
  const std::string xw = g_.Node("MatMul", module + ".matmul", {x, wt});
  return g_.Node("Add", module, {xw, Weight(module + ".bias")});
}

// The exact GELU (torch's default): x * 0.5 * (1 + erf(x / sqrt(2))).
std::string ModelGraph::AddGelu(const std::string& prefix, const std::string& x) {
  const std::string scaled =
      g_.Node("Div", prefix + ".gelu.scaled", {x, Scalar("gelu.sqrt2", std::sqrt(2.0f), type_)});
  const std::string erf = g_.Node("Erf", prefix + ".gelu.erf", {scaled});
  const std::string one_plus =
      g_.Node("Add", prefix + ".gelu.one_plus", {erf, Scalar("gelu.one", 1.0f, type_)});
  const std::string half =
      g_.Node("Mul", prefix + ".gelu.half", {x, Scalar("gelu.half", 0.5f, type_)});
  return g_.Node("Mul", prefix + ".gelu", {half, one_plus});
}

// GRN on (N, H, W, C): G = ||x|| over H, W; Nx = G / (mean_C G + eps); gamma * (x * Nx) + beta + x.
// In an fp16 graph G and Nx are computed in fp32 (x cast up), unless options_.naive_fp16_grn.
std::string ModelGraph::AddGrn(const std::string& module, const std::string& x) {
  const bool cast = type_ == kF16 && !options_.naive_fp16_grn;
  const onnx::TensorProto::DataType stats_type = cast ? kF32 : type_;
  std::string xs = x;
  if (cast) xs = g_.Node("Cast", module + ".to_fp32", {x}, {AttrInt("to", kF32)});
  const std::string sumsq = g_.Node("ReduceSumSquare", module + ".sumsq", {xs},
                                    {AttrInts("axes", {1, 2}), AttrInt("keepdims", 1)});
  const std::string gx = g_.Node("Sqrt", module + ".gx", {sumsq});
  const std::string mean = g_.Node("ReduceMean", module + ".mean", {gx},
                                   {AttrInts("axes", {-1}), AttrInt("keepdims", 1)});
  const std::string eps_name = absl::StrCat("grn.eps.", stats_type == kF32 ? "fp32" : "fp16");
  const std::string denom =
      g_.Node("Add", module + ".denom",
              {mean, Scalar(eps_name, static_cast<float>(Eps(module)), stats_type)});
  std::string nx = g_.Node("Div", module + ".nx", {gx, denom});
  if (cast) nx = g_.Node("Cast", module + ".nx_fp16", {nx}, {AttrInt("to", kF16)});
  const std::string xn = g_.Node("Mul", module + ".x_nx", {x, nx});
  const std::string scaled = g_.Node("Mul", module + ".scaled", {Weight(module + ".gamma"), xn});
  const std::string shifted =
      g_.Node("Add", module + ".shifted", {scaled, Weight(module + ".beta")});
  return g_.Node("Add", module, {shifted, x});
}

std::string ModelGraph::AddBlock(const std::string& module, const std::string& x) {
  const int64_t channels = params_.find(module + ".dwconv.weight")->size(0);
  const std::string dw = AddConv(module + ".dwconv", x, 7, 1, 3, channels);
  const std::string nhwc =
      g_.Node("Transpose", module + ".to_nhwc", {dw}, {AttrInts("perm", kToNhwc)});
  std::string h = AddLayerNorm(module + ".norm", nhwc);
  h = AddLinear(module + ".pwconv1", h);
  h = AddGelu(module, h);
  h = AddGrn(module + ".grn", h);
  h = AddLinear(module + ".pwconv2", h);
  const std::string nchw =
      g_.Node("Transpose", module + ".to_nchw", {h}, {AttrInts("perm", kToNchw)});
  return g_.Node("Add", module, {x, nchw});
}

std::string ModelGraph::AddStemAndStages(std::string x) {
  x = AddConv("downsample_layers.0.0", x, 4, 4, 0, 1);
  x = AddChannelsFirstLayerNorm("downsample_layers.0.1", x);
  const std::vector<int64_t>& depths = model_.options.depths();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      const std::string d = absl::StrCat("downsample_layers.", i);
      x = AddChannelsFirstLayerNorm(d + ".0", x);
      x = AddConv(d + ".1", x, 2, 2, 0, 1);
    }
    for (int64_t j = 0; j < depths[i]; ++j) x = AddBlock(absl::StrCat("stages.", i, ".", j), x);
  }
  return x;
}

std::string ModelGraph::AddHead(const std::string& x) {
  const std::string pooled =
      g_.Node("ReduceMean", "pool", {x}, {AttrInts("axes", {2, 3}), AttrInt("keepdims", 0)});
  const std::string features = AddLayerNorm("norm", pooled);
  return g_.Node("Gemm", kOutputName, {features, Weight("head.weight"), Weight("head.bias")},
                 {AttrInt("transB", 1)});
}

void ModelGraph::Build() {
  const auto& o = model_.options;
  g_.Input(kInputName, type_, {"batch", std::to_string(o.in_chans()), "height", "width"});
  std::string x = kInputName;
  if (options_.normalize_inside) {
    const at::Tensor mean = at::tensor(std::vector<float>(kMean.begin(), kMean.end()));
    const at::Tensor stdev = at::tensor(std::vector<float>(kStd.begin(), kStd.end()));
    x = g_.Node("Sub", "normalize.centered",
                {x, Tensor("normalize.mean", mean.view({1, 3, 1, 1}), type_)});
    x = g_.Node("Div", "normalize", {x, Tensor("normalize.std", stdev.view({1, 3, 1, 1}), type_)});
  }
  x = AddHead(AddStemAndStages(x));
  g_.Output(x, type_, {"batch", std::to_string(o.num_classes())});
}

absl::Status CheckOptions(const models::ConvNeXtV2Impl& model, const OnnxOptions& options) {
  if (options.opset != kOnnxOpset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ONNX opset ", options.opset, " is not supported: the export writes opset ", kOnnxOpset,
        " (LayerNormalization needs it; libonnx 1.12 checks nothing newer)"));
  }
  if (options.normalize_inside && model.options.in_chans() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX normalize_inside uses ImageNet's RGB mean and std, but the model has ",
                     model.options.in_chans(), " input channels"));
  }
  if (options.naive_fp16_grn && options.precision != OnnxPrecision::kFloat16) {
    return absl::InvalidArgumentError("ONNX naive_fp16_grn applies to fp16 graphs only");
  }
  if (options.precision != OnnxPrecision::kFloat16) return absl::OkStatus();
  // A weight fp16 cannot hold would become inf in the file.
  for (const auto& item : model.named_parameters()) {
    const double max_abs = item.value().detach().abs().max().item<double>();
    if (!(max_abs <= kFp16Max)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ONNX fp16: parameter ", item.key(), " has |value| up to ", max_abs,
                       ", beyond fp16's ", kFp16Max, "; export with precision fp32"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<onnx::ModelProto> BuildOnnxModel(const models::ConvNeXtV2& model,
                                                const OnnxOptions& options) {
  if (absl::Status s = CheckOptions(*model, options); !s.ok()) return s;
  onnx::ModelProto proto;
  proto.set_ir_version(kOnnxIrVersion);
  proto.set_producer_name("convnextv2");
  proto.set_doc_string(
      "ConvNeXt V2 (Woo et al., 2023). Input pixel_values: NCHW, normalized with ImageNet mean/std "
      "unless normalize_inside (then RGB in [0, 1]). Output logits.");
  onnx::OperatorSetIdProto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  auto add_meta = [&proto](const std::string& key, const std::string& value) {
    onnx::StringStringEntryProto* e = proto.add_metadata_props();
    e->set_key(key);
    e->set_value(value);
  };
  add_meta("precision", options.precision == OnnxPrecision::kFloat16 ? "fp16" : "fp32");
  add_meta("normalize_inside", options.normalize_inside ? "true" : "false");
  add_meta("mean", "0.485,0.456,0.406");
  add_meta("std", "0.229,0.224,0.225");
  onnx::GraphProto* graph = proto.mutable_graph();
  graph->set_name("convnextv2");
  ModelGraph(*model, options, graph).Build();
  return proto;
}

}  // namespace convnextv2::onnx_export
