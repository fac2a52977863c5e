// Augmentation ops against known answers, RandAugment parsing, crop/erase statistics, the
// train/eval transforms' sizes and their determinism.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "convnextv2/data/augment_ops.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/rand_augment.h"
#include "convnextv2/data/transforms.h"
#include "tests/data/test_images.h"

namespace convnextv2::data {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::EncodeJpeg;
using testing::EncodePng;
using testing::Gradient;

// A 1-pixel-high strip with the given gray levels in all three channels.
Image Strip(const std::vector<int>& values) {
  Image img;
  img.height = 1;
  img.width = static_cast<int>(values.size());
  img.channels = 3;
  for (int v : values) img.pixels.insert(img.pixels.end(), 3, static_cast<uint8_t>(v));
  return img;
}

std::vector<int> Red(const Image& img) {
  std::vector<int> out;
  for (size_t i = 0; i < img.pixels.size(); i += 3) out.push_back(img.pixels[i]);
  return out;
}

TEST(OpsTest, PointOpsKnownAnswers) {
  Image a = Strip({0, 100, 127, 128, 200, 255});
  ops::Invert(a);
  EXPECT_THAT(Red(a), ElementsAre(255, 155, 128, 127, 55, 0));
  Image b = Strip({0, 100, 127, 128, 200, 255});
  ops::Solarize(b, 128);
  EXPECT_THAT(Red(b), ElementsAre(0, 100, 127, 127, 55, 0));
  Image c = Strip({0, 100, 127, 128, 200, 255});
  ops::Posterize(c, 2);
  EXPECT_THAT(Red(c), ElementsAre(0, 64, 64, 128, 192, 192));
  Image d = Strip({0, 100, 127, 128, 200, 255});
  ops::Posterize(d, 0);
  EXPECT_THAT(Red(d), ElementsAre(0, 0, 0, 0, 0, 0));
  Image e = Strip({0, 100, 127, 128, 200, 255});
  ops::SolarizeAdd(e, 110);
  EXPECT_THAT(Red(e), ElementsAre(110, 210, 237, 128, 200, 255));
  Image f = Strip({64, 128, 192});
  ops::AutoContrast(f);  // scale 255/128, offset -127.5: int(127.5) = 127
  EXPECT_THAT(Red(f), ElementsAre(0, 127, 255));
  Image g = Strip({10, 10, 20, 30});
  ops::Equalize(g);  // PIL: step (4-1)//255 = 0 -> unchanged
  EXPECT_THAT(Red(g), ElementsAre(10, 10, 20, 30));
  Image h = Strip({100, 200});
  ops::Brightness(h, 1.5);
  EXPECT_THAT(Red(h), ElementsAre(150, 255));
  Image k = Strip({100, 200});
  ops::Contrast(k, 0.0);  // the mean gray level, (100 + 200) / 2
  EXPECT_THAT(Red(k), ElementsAre(150, 150));
}

TEST(OpsTest, EqualizeSpreadsHistogram) {
  std::vector<int> v;
  for (int i = 0; i < 256; ++i) v.push_back(100 + i % 4);  // 4 levels, 64 each
  Image img = Strip(v);
  ops::Equalize(img);
  const std::vector<int> values = Red(img);
  std::set<int> levels(values.begin(), values.end());
  // PIL: step = (256 - 64) // 255 = 0 -> unchanged; with 512 pixels it spreads.
  EXPECT_THAT(levels, ElementsAre(100, 101, 102, 103));
  v.clear();
  for (int i = 0; i < 1024; ++i) v.push_back(100 + i % 4);
  Image big = Strip(v);
  ops::Equalize(big);
  const std::vector<int> red = Red(big);
  EXPECT_EQ(red[0], 0);  // step = 768 // 255 = 3: n = 1 -> 0, 257 // 3 = 85, 513 // 3 = 171
  EXPECT_EQ(red[1], 85);
  EXPECT_EQ(red[2], 171);
  EXPECT_EQ(red[3], 255);
}

// PIL's ImageEnhance written out plainly: blend(degenerate, img, f) per byte in float, with
// the degenerate images Color: luma, Contrast: mean luma, Brightness: 0, Sharpness: SMOOTH.
Image ReferenceEnhance(const Image& img, const std::string& op, double factor) {
  auto luma = [&](size_t i) {
    return (img.pixels[i] * 19595 + img.pixels[i + 1] * 38470 + img.pixels[i + 2] * 7471 +
            0x8000) >> 16;
  };
  std::vector<uint8_t> degenerate(img.pixels.size());
  double sum = 0;
  for (size_t i = 0; i < img.pixels.size(); i += 3) sum += luma(i);
  const int mean = static_cast<int>(sum / (img.pixels.size() / 3) + 0.5);
  const int w = img.width, h = img.height;
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    const size_t p = i / 3, c = i % 3;
    const int x = static_cast<int>(p % w), y = static_cast<int>(p / w);
    if (op == "Color") degenerate[i] = static_cast<uint8_t>(luma(i - c));
    if (op == "Contrast") degenerate[i] = static_cast<uint8_t>(mean);
    if (op == "Brightness") degenerate[i] = 0;
    if (op == "Sharpness") {
      degenerate[i] = img.pixels[i];
      if (x == 0 || y == 0 || x == w - 1 || y == h - 1) continue;
      int s = 4 * img.pixels[i];
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) s += img.pixels[((y + dy) * w + x + dx) * 3 + c];
      }
      degenerate[i] = static_cast<uint8_t>((s + 6) / 13);
    }
  }
  Image out = img;
  const float a = static_cast<float>(factor);
  for (size_t i = 0; i < out.pixels.size(); ++i) {
    const float d = degenerate[i];
    const float v = d + a * (static_cast<float>(img.pixels[i]) - d);
    out.pixels[i] = v <= 0 ? 0 : v >= 255 ? 255 : static_cast<uint8_t>(v);
  }
  return out;
}

TEST(OpsTest, EnhanceOpsEqualPlainPilFormulas) {
  Image img;
  img.width = 23;
  img.height = 17;
  img.channels = 3;
  SampleRng rng(4);
  for (int i = 0; i < 23 * 17 * 3; ++i) img.pixels.push_back(static_cast<uint8_t>(rng.Below(256)));
  for (double f : {0.0, 0.1, 0.37, 1.0, 1.45, 1.9}) {
    for (const std::string op : {"Color", "Contrast", "Brightness", "Sharpness"}) {
      Image got = img;
      if (op == "Color") ops::Color(got, f);
      if (op == "Contrast") ops::Contrast(got, f);
      if (op == "Brightness") ops::Brightness(got, f);
      if (op == "Sharpness") ops::Sharpness(got, f);
      EXPECT_EQ(got.pixels, ReferenceEnhance(img, op, f).pixels) << op << " " << f;
    }
  }
}

TEST(OpsTest, ColorZeroIsPilGrayscale) {
  Image img = Strip({0});
  img.pixels = {255, 0, 0};
  ops::Color(img, 0.0);
  EXPECT_THAT(img.pixels, ElementsAre(76, 76, 76));  // L = 0.299 * 255
}

TEST(OpsTest, GeometryKnownAnswers) {
  const ops::Fill fill = {1, 2, 3};
  Image img = Gradient(8, 6);
  Image flipped = img;
  ops::FlipHorizontal(flipped);
  EXPECT_EQ(flipped.pixels[0], img.pixels[7 * 3]);
  // Whole-pixel translations are exact: output x reads input x + 2.
  Image shifted = img;
  ops::TranslateX(shifted, 2, ops::Interp::kBilinear, fill);
  EXPECT_EQ(shifted.pixels[(1 * 8 + 3) * 3], img.pixels[(1 * 8 + 5) * 3]);
  EXPECT_EQ(shifted.pixels[(1 * 8 + 7) * 3 + 2], 3);  // filled
  // A 90-degree rotation of a square image is exact: PIL's counter-clockwise rotate moves
  // input (x, y) to (y, W-1-x).
  Image sq = Gradient(6, 6);
  Image rot = sq;
  ops::Rotate(rot, 90, ops::Interp::kBilinear, fill);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 6; ++x) {
      EXPECT_EQ(rot.pixels[(y * 6 + x) * 3], sq.pixels[(x * 6 + (5 - y)) * 3]) << x << "," << y;
    }
  }
  Image crop = ops::Crop(img, 1, 2, 3, 4);
  EXPECT_EQ(crop.width, 4);
  EXPECT_EQ(crop.height, 3);
  EXPECT_EQ(crop.pixels[0], img.pixels[(1 * 8 + 2) * 3]);
  Image padded = ops::Pad(img, 4);
  EXPECT_EQ(padded.width, 16);
  EXPECT_EQ(padded.pixels[0], 0);
  EXPECT_EQ(padded.pixels[(4 * 16 + 4) * 3], img.pixels[0]);
}

TEST(RandAugmentTest, ParsesTimmPolicy) {
  absl::StatusOr<RandAugment> ra = RandAugment::Parse("rand-m9-mstd0.5-inc1", {});
  ASSERT_TRUE(ra.ok()) << ra.status();
  EXPECT_DOUBLE_EQ(ra->magnitude(), 9);
  EXPECT_DOUBLE_EQ(ra->magnitude_std(), 0.5);
  EXPECT_EQ(ra->num_layers(), 2);
  EXPECT_EQ(ra->op_names().size(), 15u);
  EXPECT_THAT(ra->op_names(), ::testing::Contains("PosterizeIncreasing"));
  absl::StatusOr<RandAugment> plain = RandAugment::Parse("rand-n3-m5", {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->num_layers(), 3);
  EXPECT_THAT(plain->op_names(), ::testing::Contains("Posterize"));
  for (const char* bad : {"auto", "rand-q3", "rand-m", "rand-m11"}) {
    EXPECT_FALSE(RandAugment::Parse(bad, {}).ok()) << bad;
  }
}

TEST(RandAugmentTest, IncreasingOpsAtMagnitudeTen) {
  absl::StatusOr<RandAugment> ra = RandAugment::Parse("rand-m10-inc1", {});
  ASSERT_TRUE(ra.ok());
  SampleRng rng(1);
  Image a = Strip({0, 100, 200, 255});
  ra->ApplyOp("SolarizeIncreasing", 10, a, rng);  // threshold 0: everything inverted
  EXPECT_THAT(Red(a), ElementsAre(255, 155, 55, 0));
  Image b = Strip({0, 100, 200, 255});
  ra->ApplyOp("PosterizeIncreasing", 10, b, rng);  // 0 bits kept
  EXPECT_THAT(Red(b), ElementsAre(0, 0, 0, 0));
  Image c = Strip({0, 100, 200, 255});
  ra->ApplyOp("SolarizeAdd", 10, c, rng);  // +110 below 128
  EXPECT_THAT(Red(c), ElementsAre(110, 210, 200, 255));
  Image d = Strip({0, 100, 200, 255});
  ra->ApplyOp("Posterize", 5, d, rng);  // plain: int(0.5 * 4) = 2 bits
  EXPECT_THAT(Red(d), ElementsAre(0, 64, 192, 192));
  Image e = Strip({100, 200});
  ra->ApplyOp("BrightnessIncreasing", 10, e, rng);  // factor 1.9 or 0.1
  EXPECT_TRUE(Red(e) == std::vector<int>({190, 255}) || Red(e) == std::vector<int>({10, 20}))
      << Red(e)[0];
}

TEST(RandAugmentTest, AppliesSomethingAndIsDeterministic) {
  absl::StatusOr<RandAugment> ra = RandAugment::Parse("rand-m9-mstd0.5-inc1", {});
  ASSERT_TRUE(ra.ok());
  int changed = 0;
  for (int i = 0; i < 50; ++i) {
    Image a = Gradient(20, 20), b = Gradient(20, 20);
    SampleRng r1(i), r2(i);
    ra->Apply(a, r1);
    ra->Apply(b, r2);
    EXPECT_EQ(a.pixels, b.pixels);
    changed += a.pixels != Gradient(20, 20).pixels;
  }
  // Each of 2 ops applies with p 0.5: about 75% of images change (a few ops can be no-ops).
  EXPECT_GT(changed, 25);
  EXPECT_LT(changed, 50);
}

TEST(RandomResizedCropTest, BoxesWithinScaleAndRatioBounds) {
  SampleRng rng(7);
  double scale_sum = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    const CropBox b = RandomResizedCropBox(500, 375, 0.08, 1.0, 3.0 / 4, 4.0 / 3, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_LE(b.top + b.height, 375);
    ASSERT_LE(b.left + b.width, 500);
    const double scale = static_cast<double>(b.width) * b.height / (500.0 * 375);
    const double ratio = static_cast<double>(b.width) / b.height;
    // Rounding to whole pixels moves scale and ratio a little past the bounds.
    EXPECT_GE(scale, 0.075);
    EXPECT_LE(scale, 1.0);
    EXPECT_GE(ratio, 0.74);
    EXPECT_LE(ratio, 4.0 / 3 + 0.02);
    scale_sum += scale;
  }
  // Mostly uniform scale in [0.08, 1] (large draws that do not fit are redrawn: mean < 0.54).
  EXPECT_GT(scale_sum / n, 0.4);
  EXPECT_LT(scale_sum / n, 0.54);
  // Fallback: a very wide image gets the central crop clamped to ratio 4/3.
  SampleRng rng2(3);
  const CropBox wide = RandomResizedCropBox(1000, 10, 0.99, 1.0, 3.0 / 4, 4.0 / 3, rng2);
  EXPECT_EQ(wide.height, 10);
  EXPECT_EQ(wide.width, 13);
  EXPECT_EQ(wide.left, (1000 - 13) / 2);
}

TEST(RandomEraseTest, AreaBoundsAndModes) {
  int erased = 0;
  for (int i = 0; i < 400; ++i) {
    SampleRng rng(i);
    at::Tensor x = at::full({3, 40, 40}, 7.0f);
    RandomErase(x, {.probability = 0.5, .mode = EraseMode::kConst}, rng);
    const int64_t zeros = x.eq(0).sum().item<int64_t>() / 3;
    if (zeros == 0) continue;
    ++erased;
    EXPECT_GE(zeros, static_cast<int64_t>(0.02 * 1600 * 0.7));
    EXPECT_LE(zeros, static_cast<int64_t>(1600 / 3.0 * 1.3));
    // The box covers the same pixels in all channels.
    EXPECT_TRUE(x[0].eq(0).equal(x[2].eq(0)));
  }
  EXPECT_GT(erased, 150);
  EXPECT_LT(erased, 250);
  SampleRng rng(1);
  at::Tensor x = at::full({3, 40, 40}, 7.0f);
  RandomErase(x, {.probability = 1.0, .mode = EraseMode::kRand}, rng);
  const at::Tensor changed = x[0].ne(7.0f);
  ASSERT_GT(changed.sum().item<int64_t>(), 0);
  EXPECT_EQ(std::get<0>(at::_unique(x[0].masked_select(changed))).numel(), 1);  // one color per channel
  SampleRng rng2(1);
  at::Tensor y = at::full({3, 40, 40}, 7.0f);
  RandomErase(y, {.probability = 1.0, .mode = EraseMode::kPixel}, rng2);
  EXPECT_GT(std::get<0>(at::_unique(y[0].masked_select(y[0].ne(7.0f)))).numel(), 10);  // noise per pixel
}

TEST(NormalizeTest, KnownValues) {
  Image img = Strip({0, 255});
  img.pixels[3] = 128;
  const at::Tensor t = ToNormalizedTensor(img, kImagenetMean, kImagenetStd);
  EXPECT_NEAR(t[0][0][0].item<float>(), -0.485f / 0.229f, 1e-5);
  EXPECT_NEAR(t[0][0][1].item<float>(), (128 / 255.0f - 0.485f) / 0.229f, 1e-5);
  EXPECT_NEAR(t[2][0][1].item<float>(), (1 - 0.406f) / 0.225f, 1e-5);
}

TEST(EvalTransformTest, ResizeShorterSideThenCenterCrop) {
  EvalTransform t({.input_size = 224});
  EXPECT_EQ(t.ResizedSize(500, 375).width, 341);  // int(256 * 500 / 375)
  EXPECT_EQ(t.ResizedSize(500, 375).height, 256);
  EXPECT_EQ(t.ResizedSize(300, 600).width, 256);
  EXPECT_EQ(t.ResizedSize(300, 600).height, 512);
  EvalTransform big({.input_size = 384});
  EXPECT_EQ(big.ResizedSize(500, 375).width, 384);
  EXPECT_EQ(big.ResizedSize(500, 375).height, 384);
  // A 64x64 image whose center 56x56 (after resize to 64) is bright: crop_pct 56/64 at size 56.
  Image img;
  img.width = img.height = 64;
  img.channels = 3;
  img.pixels.assign(64 * 64 * 3, 0);
  for (int y = 4; y < 60; ++y) {
    for (int x = 4; x < 60; ++x) {
      for (int c = 0; c < 3; ++c) img.pixels[(y * 64 + x) * 3 + c] = 255;
    }
  }
  EvalTransform center({.input_size = 56, .crop_pct = 56.0 / 64.0,
                        .mean = {0, 0, 0}, .std = {1, 1, 1}});
  SampleRng rng(0);
  const at::Tensor out = center.Apply(img, rng);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 56, 56}));
  EXPECT_FLOAT_EQ(out.min().item<float>(), 1.0f);  // the crop removed exactly the dark border
}

TrainTransform::Options TrainOptions(int size) {
  TrainTransform::Options o;
  o.input_size = size;
  o.rand_augment = *RandAugment::Parse("rand-m9-mstd0.5-inc1", {});
  o.erase = {.probability = 0.25, .mode = EraseMode::kPixel, .max_count = 1};
  return o;
}

TEST(TrainTransformTest, ShapesAndDeterminismForEncodedAndDecoded) {
  TrainTransform t(TrainOptions(48));
  Example ex;
  ex.encoded = EncodeJpeg(Gradient(120, 90));
  ex.path = "mem.jpg";
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SampleRng r1(seed), r2(seed);
    absl::StatusOr<at::Tensor> a = t.ApplyExample(ex, r1);
    absl::StatusOr<at::Tensor> b = t.ApplyExample(ex, r2);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->sizes(), (std::vector<int64_t>{3, 48, 48}));
    EXPECT_TRUE(a->equal(*b));
  }
  // Small inputs: RandomCrop(32, padding 4) of a 32x32 image keeps pixels at integer shifts.
  TrainTransform::Options o;
  o.input_size = 32;
  o.small_crop = true;
  o.hflip = 0;
  o.mean = {0, 0, 0};
  o.std = {1, 1, 1};
  TrainTransform small(o);
  SampleRng rng(5);
  const at::Tensor x = small.Apply(Gradient(32, 32), rng);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 32, 32}));
  // The padding is zero and the rest are the image's own values.
  const at::Tensor src = ToNormalizedTensor(Gradient(32, 32), {0, 0, 0}, {1, 1, 1});
  const at::Tensor in_values = at::cat({src[0].flatten(), at::zeros({1})});
  const at::Tensor out_values = x[0].flatten();
  EXPECT_TRUE(at::isin(out_values, in_values).all().item<bool>());
}

TEST(TrainTransformTest, DctScalingKeepsDrawsAndCloseness) {
  // The same draws with and without DCT scaling: images close, not necessarily equal.
  TrainTransform::Options o = TrainOptions(32);
  o.small_crop = false;
  o.rand_augment.reset();
  o.erase.probability = 0;
  TrainTransform scaled(o);
  o.dct_scaling = false;
  TrainTransform full(o);
  Example ex;
  ex.encoded = EncodeJpeg(Gradient(256, 192), 95);
  double diff = 0;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    SampleRng r1(seed), r2(seed);
    diff += (*scaled.ApplyExample(ex, r1) - *full.ApplyExample(ex, r2)).abs().mean().item<double>();
  }
  EXPECT_LT(diff / 10, 0.1);  // in normalized units (1/255 is 0.017)
}

TEST(LoaderDeterminismTest, SameBatchesWithOneOrManyThreads) {
  const std::string root = testing::TmpDir("det");
  for (int i = 0; i < 8; ++i) {
    testing::WriteBytes(root + "/c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".jpg",
                        EncodeJpeg(Gradient(60 + 3 * i, 50 + 2 * i)));
  }
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  ASSERT_TRUE(ds.ok());
  TrainTransform t(TrainOptions(32));
  Loader one_thread(ds->get(), &t, {.batch_size = 4, .shuffle = true, .seed = 3, .num_workers = 1});
  Loader four(ds->get(), &t, {.batch_size = 4, .shuffle = true, .seed = 3, .num_workers = 4});
  const at::Tensor one = one_thread.GetBatch(2, 1)->images;
  const at::Tensor many = four.GetBatch(2, 1)->images;
  EXPECT_TRUE(one.equal(many));
  Loader& loader = four;
  EXPECT_FALSE(one.equal(loader.GetBatch(3, 1)->images));  // another epoch, other draws
}

TEST(MakeTransformTest, PicksPipelineAndRejectsBadPolicy) {
  ExperimentConfig c;
  c.mutable_data()->set_data_set("IMNET");
  c.mutable_model()->set_input_size(64);
  absl::StatusOr<std::unique_ptr<Transform>> train = MakeTransform(c, Split::kTrain);
  ASSERT_TRUE(train.ok());
  EXPECT_NE(dynamic_cast<TrainTransform*>(train->get()), nullptr);
  absl::StatusOr<std::unique_ptr<Transform>> eval = MakeTransform(c, Split::kEval);
  ASSERT_TRUE(eval.ok());
  EXPECT_NE(dynamic_cast<EvalTransform*>(eval->get()), nullptr);
  c.mutable_data()->set_data_set("IDX");
  EXPECT_NE(dynamic_cast<SmallImageTransform*>(MakeTransform(c, Split::kTrain)->get()), nullptr);
  c.mutable_data()->set_data_set("CIFAR");
  c.mutable_aug()->set_aa("rand-x9");
  absl::StatusOr<std::unique_ptr<Transform>> bad = MakeTransform(c, Split::kTrain);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("unknown option 'x'"));
}

}  // namespace
}  // namespace convnextv2::data
