// FCMAE: masking, the dense masked encoder against a per-site sparse computation, the loss,
// patchify, initialization and parameter counts.
#include "convnextv2/models/fcmae.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "convnextv2/models/convnextv2.h"

namespace convnextv2::models {
namespace {

FCMAEOptions Tiny(GrnScope scope = GrnScope::kPerSample) {
  return FCMAEOptions()
      .img_size(64)
      .depths({1, 1, 2, 1})
      .dims({4, 8, 8, 12})
      .decoder_depth(1)
      .decoder_embed_dim(16)
      .mask_ratio(0.5)
      .grn_scope(scope);
}

// Every parameter random (GRN gamma/beta and biases nonzero, so that a wrong GRN scope or a
// leaking bias would show), LayerNorm weights near 1.
void Randomize(torch::nn::Module& m, uint64_t seed) {
  c10::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (const auto& item : m.named_parameters()) {
    at::Tensor p = item.value();
    const bool ln_weight = p.dim() == 1 && item.key().find("norm") != std::string::npos &&
                           item.key().size() > 7 &&
                           item.key().compare(item.key().size() - 7, 7, ".weight") == 0;
    p.normal_(ln_weight ? 1.0 : 0.0, ln_weight ? 0.1 : 0.25, gen);
  }
}

TEST(FcmaeMaskTest, KeepsExactlyLenKeepPatchesPerSample) {
  for (auto [img, ratio, keep] : std::vector<std::tuple<int, double, int>>{
           {128, 0.6, 6}, {128, 0.75, 4}, {128, 0.0, 16}, {224, 0.6, 19}, {64, 0.5, 2}}) {
    FCMAE model(FCMAEOptions().img_size(img).depths({1, 1, 1, 1}).dims({4, 4, 4, 4})
                    .decoder_embed_dim(4).mask_ratio(ratio));
    EXPECT_EQ(model->len_keep(), keep) << img << " " << ratio;
    at::Generator gen = at::detail::createCPUGenerator(7);
    const at::Tensor mask = model->RandomMask(64, gen);
    ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{64, (img / 32) * (img / 32)}));
    const at::Tensor kept = (1 - mask).sum(1);
    EXPECT_TRUE(at::all(kept == keep).item<bool>()) << kept;
    EXPECT_TRUE(at::all((mask == 0) | (mask == 1)).item<bool>());
  }
}

TEST(FcmaeMaskTest, MatchesArgsortGatherOfTheSameNoise) {
  FCMAE model(Tiny().img_size(128).mask_ratio(0.6));
  at::Generator gen = at::detail::createCPUGenerator(3);
  const at::Tensor mask = model->RandomMask(8, gen);
  // The official construction from the same draws.
  at::Generator again = at::detail::createCPUGenerator(3);
  const at::Tensor noise = at::randn({8, 16}, again, at::kFloat);
  const at::Tensor ids_shuffle = noise.argsort(int64_t{1}, false);
  const at::Tensor ids_restore = ids_shuffle.argsort(int64_t{1}, false);
  at::Tensor base = at::ones({8, 16});
  base.narrow(1, 0, 6).zero_();
  EXPECT_TRUE(at::equal(mask, base.gather(1, ids_restore)));
  // Samples get different masks.
  EXPECT_FALSE(at::equal(mask[0], mask[1]));
}

TEST(FcmaeMaskTest, UpsampleRepeatsEachPatch) {
  const at::Tensor mask = at::tensor({0.f, 1.f, 1.f, 0.f}).reshape({1, 4});
  const at::Tensor up = UpsampleMask(mask, 2);
  const at::Tensor expected = at::tensor({0.f, 0.f, 1.f, 1.f,  //
                                          0.f, 0.f, 1.f, 1.f,  //
                                          1.f, 1.f, 0.f, 0.f,  //
                                          1.f, 1.f, 0.f, 0.f})
                                  .reshape({1, 4, 4});
  EXPECT_TRUE(at::equal(up, expected));
  EXPECT_EQ(UpsampleMask(at::zeros({3, 16}), 8).sizes(), (std::vector<int64_t>{3, 32, 32}));
}

// ---- a per-site sparse encoder: computes only at active sites, reads only active sites ------

struct SparseMap {
  int64_t n, c, h, w;
  std::vector<double> f;       // (n, c, h, w)
  std::vector<char> active;    // (n, h, w)
  double& at(int64_t b, int64_t ch, int64_t y, int64_t x) {
    return f[((b * c + ch) * h + y) * w + x];
  }
  bool on(int64_t b, int64_t y, int64_t x) const { return active[(b * h + y) * w + x]; }
};

std::vector<double> Vec(const at::Tensor& t) {
  const at::Tensor d = t.detach().to(at::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

void LayerNormInPlace(std::vector<double>& v, const std::vector<double>& w,
                      const std::vector<double>& b) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  for (double x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  for (size_t i = 0; i < v.size(); ++i) v[i] = (v[i] - mean) / std::sqrt(var + 1e-6) * w[i] + b[i];
}

std::vector<double> LinearApply(const std::vector<double>& x, const std::vector<double>& w,
                                const std::vector<double>& b) {
  std::vector<double> y(b);
  for (size_t o = 0; o < b.size(); ++o) {
    for (size_t i = 0; i < x.size(); ++i) y[o] += w[o * x.size() + i] * x[i];
  }
  return y;
}

void SparseBlock(BlockImpl& block, SparseMap& m, GrnScope scope) {
  const auto dw_w = Vec(block.dwconv->weight), dw_b = Vec(block.dwconv->bias);
  const auto ln_w = Vec(block.norm->weight), ln_b = Vec(block.norm->bias);
  const auto w1 = Vec(block.pwconv1->weight), b1 = Vec(block.pwconv1->bias);
  const auto w2 = Vec(block.pwconv2->weight), b2 = Vec(block.pwconv2->bias);
  const auto gamma = Vec(block.grn->gamma), beta = Vec(block.grn->beta);
  const int64_t c = m.c, c4 = 4 * c;
  std::map<std::array<int64_t, 3>, std::vector<double>> hidden;  // active site -> (4C)
  for (int64_t b = 0; b < m.n; ++b)
    for (int64_t y = 0; y < m.h; ++y)
      for (int64_t x = 0; x < m.w; ++x) {
        if (!m.on(b, y, x)) continue;
        std::vector<double> v(c);
        for (int64_t ch = 0; ch < c; ++ch) {
          double s = dw_b[ch];
          for (int64_t ky = 0; ky < 7; ++ky)
            for (int64_t kx = 0; kx < 7; ++kx) {
              const int64_t yy = y + ky - 3, xx = x + kx - 3;
              if (yy < 0 || xx < 0 || yy >= m.h || xx >= m.w || !m.on(b, yy, xx)) continue;
              s += dw_w[(ch * 7 + ky) * 7 + kx] * m.at(b, ch, yy, xx);
            }
          v[ch] = s;
        }
        LayerNormInPlace(v, ln_w, ln_b);
        std::vector<double> hdn = LinearApply(v, w1, b1);
        for (double& e : hdn) e = 0.5 * e * (1.0 + std::erf(e / std::sqrt(2.0)));
        hidden[{b, y, x}] = hdn;
      }
  // GRN norms over the active sites of one sample (per-sample) or of the batch.
  std::vector<std::vector<double>> sq(m.n, std::vector<double>(c4, 0.0));
  for (const auto& [site, hdn] : hidden) {
    const int64_t group = scope == GrnScope::kBatch ? 0 : site[0];
    for (int64_t k = 0; k < c4; ++k) sq[group][k] += hdn[k] * hdn[k];
  }
  SparseMap out = m;
  std::fill(out.f.begin(), out.f.end(), 0.0);
  for (const auto& [site, hdn] : hidden) {
    const auto& s = sq[scope == GrnScope::kBatch ? 0 : site[0]];
    double mean_g = 0;
    for (double e : s) mean_g += std::sqrt(e);
    mean_g /= c4;
    std::vector<double> g(c4);
    for (int64_t k = 0; k < c4; ++k) {
      const double nx = std::sqrt(s[k]) / (mean_g + 1e-6);
      g[k] = gamma[k] * (hdn[k] * nx) + beta[k] + hdn[k];
    }
    const std::vector<double> o = LinearApply(g, w2, b2);
    for (int64_t ch = 0; ch < c; ++ch) {
      out.at(site[0], ch, site[1], site[2]) = m.at(site[0], ch, site[1], site[2]) + o[ch];
    }
  }
  m = out;
}

SparseMap SparseDownsample(torch::nn::SequentialImpl& ds, SparseMap& m) {
  const auto ln_w = Vec(ds.ptr(0)->as<LayerNormImpl>()->weight);
  const auto ln_b = Vec(ds.ptr(0)->as<LayerNormImpl>()->bias);
  auto* conv = ds.ptr(1)->as<torch::nn::Conv2dImpl>();
  const auto w = Vec(conv->weight), bias = Vec(conv->bias);
  const int64_t co = conv->options.out_channels();
  SparseMap out{m.n, co, m.h / 2, m.w / 2, {}, {}};
  out.f.assign(out.n * co * out.h * out.w, 0.0);
  out.active.assign(out.n * out.h * out.w, 0);
  for (int64_t b = 0; b < m.n; ++b)
    for (int64_t y = 0; y < out.h; ++y)
      for (int64_t x = 0; x < out.w; ++x) {
        bool any = false;
        std::vector<double> acc(bias);
        for (int64_t ky = 0; ky < 2; ++ky)
          for (int64_t kx = 0; kx < 2; ++kx) {
            const int64_t yy = 2 * y + ky, xx = 2 * x + kx;
            if (!m.on(b, yy, xx)) continue;
            any = true;
            std::vector<double> v(m.c);
            for (int64_t ch = 0; ch < m.c; ++ch) v[ch] = m.at(b, ch, yy, xx);
            LayerNormInPlace(v, ln_w, ln_b);
            for (int64_t o = 0; o < co; ++o)
              for (int64_t ch = 0; ch < m.c; ++ch)
                acc[o] += w[((o * m.c + ch) * 2 + ky) * 2 + kx] * v[ch];
          }
        if (!any) continue;
        out.active[(b * out.h + y) * out.w + x] = 1;
        for (int64_t o = 0; o < co; ++o) out.at(b, o, y, x) = acc[o];
      }
  return out;
}

// The official sparse encoder, site by site: dense stem, then only active sites.
at::Tensor SparseEncoderReference(FCMAEEncoderImpl& enc, const at::Tensor& images,
                                  const at::Tensor& mask, GrnScope scope) {
  c10::NoGradGuard no_grad;
  auto stem = enc.downsample_layers[0]->as<torch::nn::Sequential>();
  const at::Tensor s = stem->forward(images.to(at::kFloat)).to(at::kDouble).contiguous();
  const int64_t grid = images.size(2) / 32;
  const at::Tensor keep0 = 1 - UpsampleMask(mask, s.size(2) / grid);
  SparseMap m{s.size(0), s.size(1), s.size(2), s.size(3), Vec(s), {}};
  for (double v : Vec(keep0)) m.active.push_back(v > 0.5);
  for (int64_t b = 0; b < m.n; ++b)
    for (int64_t ch = 0; ch < m.c; ++ch)
      for (int64_t y = 0; y < m.h; ++y)
        for (int64_t x = 0; x < m.w; ++x)
          if (!m.on(b, y, x)) m.at(b, ch, y, x) = 0.0;
  for (size_t i = 0; i < 4; ++i) {
    if (i > 0) {
      m = SparseDownsample(*enc.downsample_layers[i]->as<torch::nn::Sequential>(), m);
    }
    for (const auto& block : *enc.stages[i]->as<torch::nn::Sequential>()) {
      SparseBlock(*block.ptr()->as<BlockImpl>(), m, scope);
    }
  }
  return at::tensor(m.f, at::kDouble).reshape({m.n, m.c, m.h, m.w});
}

class FcmaeSparseEquivalenceTest : public ::testing::TestWithParam<GrnScope> {};

TEST_P(FcmaeSparseEquivalenceTest, DenseMaskedEncoderEqualsPerSiteSparse) {
  const GrnScope scope = GetParam();
  FCMAE model(Tiny(scope));
  Randomize(*model, 11);
  model->eval();
  at::Generator gen = at::detail::createCPUGenerator(5);
  const at::Tensor images = at::randn({3, 3, 64, 64}, gen, at::kFloat);
  // 2x2 grid: sample 0 keeps the diagonal, sample 1 one patch, sample 2 everything but one.
  const at::Tensor mask = at::tensor({0.f, 1.f, 1.f, 0.f, 1.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 0.f})
                              .reshape({3, 4});
  c10::NoGradGuard no_grad;
  const at::Tensor dense = model->encoder->forward(images, mask).to(at::kDouble);
  const at::Tensor sparse = SparseEncoderReference(*model->encoder, images, mask, scope);
  ASSERT_EQ(dense.sizes(), sparse.sizes());
  const double scale = sparse.abs().max().item<double>();
  ASSERT_GT(scale, 0.1);
  EXPECT_LT((dense - sparse).abs().max().item<double>(), 1e-4 * scale)
      << "dense\n" << dense << "\nsparse\n" << sparse;
  // Removed sites are exactly zero.
  const at::Tensor removed = mask.reshape({3, 1, 2, 2}).to(at::kBool).expand_as(dense);
  EXPECT_EQ(dense.masked_select(removed).abs().max().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Scopes, FcmaeSparseEquivalenceTest,
                         ::testing::Values(GrnScope::kPerSample, GrnScope::kBatch));

// A sample's prediction must not depend on the other samples of the batch (per-sample GRN);
// with the official batch-scope GRN it does, which shows the test can see the difference.
TEST(FcmaeBatchIndependenceTest, PerSampleScopeIsolatesSamples) {
  at::Generator gen = at::detail::createCPUGenerator(9);
  const at::Tensor images = at::randn({5, 3, 64, 64}, gen, at::kFloat);
  const at::Tensor masks =
      at::tensor({0.f, 1.f, 1.f, 0.f, 1.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 1.f,
                  1.f, 1.f, 0.f, 0.f})
          .reshape({5, 4});
  const at::Tensor a = at::tensor(std::vector<int64_t>{0, 1, 2});
  const at::Tensor b = at::tensor(std::vector<int64_t>{0, 3, 4});
  for (GrnScope scope : {GrnScope::kPerSample, GrnScope::kBatch}) {
    FCMAE model(Tiny(scope));
    Randomize(*model, 12);
    model->eval();
    c10::NoGradGuard no_grad;
    const at::Tensor pa = model->forward(images.index_select(0, a), masks.index_select(0, a)).pred;
    const at::Tensor pb = model->forward(images.index_select(0, b), masks.index_select(0, b)).pred;
    const double diff = (pa[0] - pb[0]).abs().max().item<double>();
    if (scope == GrnScope::kPerSample) {
      EXPECT_LT(diff, 1e-5);
    } else {
      EXPECT_GT(diff, 1e-3);
    }
  }
}

TEST(FcmaeLossTest, IgnoresPredictionsAtVisiblePatches) {
  for (bool norm_pix : {false, true}) {
    FCMAE model(Tiny().norm_pix_loss(norm_pix));
    at::Generator gen = at::detail::createCPUGenerator(4);
    const at::Tensor images = at::randn({2, 3, 64, 64}, gen, at::kFloat);
    const at::Tensor mask = at::tensor({0.f, 1.f, 1.f, 0.f, 1.f, 0.f, 1.f, 1.f}).reshape({2, 4});
    const at::Tensor pred = at::randn({2, 32 * 32 * 3, 2, 2}, gen, at::kFloat);
    const double loss = model->forward_loss(images, pred, mask).item<double>();
    // Changing predictions of visible patches (mask 0) leaves the loss as it was.
    const at::Tensor visible = (1 - mask).reshape({2, 1, 2, 2});
    const at::Tensor noisy = pred + 5.0 * visible * at::randn(pred.sizes(), gen, at::kFloat);
    EXPECT_DOUBLE_EQ(model->forward_loss(images, noisy, mask).item<double>(), loss);
    // Changing a removed patch's prediction changes it.
    at::Tensor other = pred.clone();
    other.select(0, 0).select(1, 0).select(1, 1).add_(1.0);  // sample 0, patch (0, 1): removed
    EXPECT_NE(model->forward_loss(images, other, mask).item<double>(), loss);
    // By hand: mean over the 5 removed patches of the mean squared error per patch.
    at::Tensor target = Patchify(images, 32);
    if (norm_pix) target = NormalizePatches(target);
    const at::Tensor p = pred.reshape({2, 3072, 4}).permute({0, 2, 1});
    double sum = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t l = 0; l < 4; ++l)
        if (mask[n][l].item<float>() == 1.f)
          sum += (p[n][l] - target[n][l]).pow(2).mean().item<double>();
    EXPECT_NEAR(loss, sum / 5, 1e-5 * loss);
  }
}

TEST(FcmaePatchifyTest, OrderAndRoundTrip) {
  at::Generator gen = at::detail::createCPUGenerator(2);
  const at::Tensor images = at::randn({2, 3, 64, 64}, gen, at::kFloat);
  const at::Tensor patches = Patchify(images, 32);
  ASSERT_EQ(patches.sizes(), (std::vector<int64_t>{2, 4, 3072}));
  // patches[n, h*w_count + w, (p*32 + q)*3 + c] == images[n, c, h*32 + p, w*32 + q]
  for (auto [n, c, h, w, p, q] : std::vector<std::array<int64_t, 6>>{
           {0, 0, 0, 0, 0, 0}, {1, 2, 1, 0, 5, 31}, {0, 1, 0, 1, 17, 3}, {1, 0, 1, 1, 31, 30}}) {
    EXPECT_EQ(patches[n][h * 2 + w][(p * 32 + q) * 3 + c].item<float>(),
              images[n][c][h * 32 + p][w * 32 + q].item<float>());
  }
  EXPECT_TRUE(at::equal(Unpatchify(patches, 32, 3), images));
}

TEST(FcmaePatchifyTest, NormPixTargets) {
  at::Generator gen = at::detail::createCPUGenerator(8);
  const at::Tensor patches = 3.0 + 2.0 * at::randn({2, 4, 12}, gen, at::kFloat);
  const at::Tensor t = NormalizePatches(patches);
  const at::Tensor x = patches[1][2];
  const double mean = x.mean().item<double>();
  double ss = 0;
  for (int64_t i = 0; i < 12; ++i) ss += std::pow(x[i].item<double>() - mean, 2);
  const double var = ss / 11;  // unbiased, as torch.var
  EXPECT_NEAR(t[1][2][5].item<double>(), (x[5].item<double>() - mean) / std::sqrt(var + 1e-6),
              1e-5);
  EXPECT_LT(t.mean(-1).abs().max().item<double>(), 1e-5);
}

int64_t CountParameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const at::Tensor& p : m.parameters()) n += p.numel();
  return n;
}

TEST(FcmaeModelTest, ParameterCountsMatchHandCount) {
  // Block(d) = dwconv 49d + d, norm 2d, pwconv1 4d^2 + 4d, GRN 8d, pwconv2 4d^2 + d = 8d^2 + 65d.
  // Encoder atto: stem 3*40*16 + 40 + 80 = 2040; downsample 12960 + 51520 + 205440;
  //   blocks 2*15400 + 2*56400 + 6*215200 + 2*840000 = 3114800  -> 3386760.
  // Decoder (512): proj 320*512 + 512 = 164352, mask_token 512, Block(512) 2130432,
  //   pred 512*3072 + 3072 = 1575936 -> 3871232.
  FCMAE atto(FCMAEOptions().depths({2, 2, 6, 2}).dims({40, 80, 160, 320}));
  EXPECT_EQ(CountParameters(*atto->encoder), 3386760);
  EXPECT_EQ(CountParameters(*atto), 3386760 + 3871232);
  // Uneven depths and two decoder blocks of width 64 (not base, 92 million parameters to
  // initialize for the same code): stem 3*24*16 + 24 + 48 = 1224; downsample 4704 + 18624 +
  //   74112; blocks 3*6168 + 1*21552 + 4*79968 + 2*307392 = 974712 -> 1073376.
  // Decoder: proj 192*64 + 64 = 12352, mask_token 64, 2*36928, pred 64*3072 + 3072 = 199680
  //   -> 285952.
  FCMAE other(FCMAEOptions().depths({3, 1, 4, 2}).dims({24, 48, 96, 192}).decoder_depth(2)
                  .decoder_embed_dim(64));
  EXPECT_EQ(CountParameters(*other->encoder), 1073376);
  EXPECT_EQ(CountParameters(*other), 1073376 + 285952);
}

TEST(FcmaeModelTest, EncoderNamesAndShapesAreTheFineTuningModels) {
  FCMAE fcmae(FCMAEOptions().depths({2, 2, 6, 2}).dims({40, 80, 160, 320}));
  ConvNeXtV2 net(ConvNeXtV2Options().depths({2, 2, 6, 2}).dims({40, 80, 160, 320}));
  const auto target = net->named_parameters();
  size_t matched = 0;
  for (const auto& item : fcmae->encoder->named_parameters()) {
    const at::Tensor* t = target.find(item.key());
    ASSERT_NE(t, nullptr) << item.key();
    EXPECT_EQ(t->sizes(), item.value().sizes()) << item.key();
    ++matched;
  }
  // Everything of the classifier but its final norm and head comes from the encoder.
  EXPECT_EQ(matched + 4, target.size());
  EXPECT_NE(fcmae->named_parameters().find("encoder.stages.3.1.grn.gamma"), nullptr);
  EXPECT_NE(fcmae->named_parameters().find("mask_token"), nullptr);
  EXPECT_NE(fcmae->named_parameters().find("decoder.0.pwconv1.weight"), nullptr);
  EXPECT_NE(fcmae->named_parameters().find("pred.weight"), nullptr);
}

double Std(const at::Tensor& t) { return t.std().item<double>(); }

TEST(FcmaeModelTest, OfficialInitializationQuirks) {
  FCMAE m(FCMAEOptions().depths({2, 2, 6, 2}).dims({40, 80, 160, 320}));
  const auto p = m->named_parameters();
  // trunc_normal_ with timm's default std 1 cut at +-2: std of N(0,1) truncated to [-2, 2].
  constexpr double kTruncStd = 0.8796;
  for (const char* name : {"encoder.downsample_layers.0.0.weight", "encoder.stages.2.0.dwconv.weight",
                           "encoder.stages.2.0.pwconv1.weight", "proj.weight", "pred.weight",
                           "decoder.0.dwconv.weight"}) {
    EXPECT_NEAR(Std(p[name]), kTruncStd, 0.05) << name;
    EXPECT_LE(p[name].abs().max().item<double>(), 2.0) << name;
  }
  EXPECT_NEAR(Std(p["encoder.downsample_layers.2.1.weight"]), 0.02, 0.002);  // cut far out
  EXPECT_EQ(p["encoder.downsample_layers.2.1.bias"].abs().max().item<double>(), 0.0);
  EXPECT_EQ(p["pred.bias"].abs().max().item<double>(), 0.0);
  // The decoder's Linear layers keep the default kaiming-uniform bound 1/sqrt(fan_in).
  const at::Tensor w1 = p["decoder.0.pwconv1.weight"];
  EXPECT_LE(w1.abs().max().item<double>(), 1.0 / std::sqrt(512.0) + 1e-7);
  EXPECT_NEAR(Std(w1), 1.0 / std::sqrt(512.0) / std::sqrt(3.0), 0.002);
  EXPECT_NE(p["decoder.0.pwconv1.bias"].abs().max().item<double>(), 0.0);
  EXPECT_NEAR(Std(p["mask_token"]), 0.02, 0.004);
  EXPECT_EQ(p["encoder.stages.0.0.grn.gamma"].abs().max().item<double>(), 0.0);
}

TEST(FcmaeModelTest, TrainsDownOnAFixedBatch) {
  FCMAE model(Tiny().norm_pix_loss(true));
  at::Generator gen = at::detail::createCPUGenerator(1);
  const at::Tensor images = at::randn({4, 3, 64, 64}, gen, at::kFloat);
  const at::Tensor mask = model->RandomMask(4, gen);
  std::vector<at::Tensor> params = model->parameters();
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    const at::Tensor loss = model->forward(images, mask).loss;
    for (at::Tensor& q : params) q.mutable_grad() = at::Tensor();
    loss.backward();
    c10::NoGradGuard no_grad;
    for (at::Tensor& q : params) {
      if (q.grad().defined()) q.sub_(q.grad().sign() * 1e-3);  // sign descent: scale-free
    }
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.9 * first);
}

}  // namespace
}  // namespace convnextv2::models
