#include "convnextv2/data/transforms.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/dataset_registry.h"
#include "convnextv2/data/image_decode.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {
namespace {

// Python's round(): halves to even (torchvision's CenterCrop uses it).
int RoundHalfEven(double v) { return static_cast<int>(std::nearbyint(v)); }

// random.randint(lo, hi), both ends included.
int RandInt(int lo, int hi, SampleRng& rng) {
  return lo + static_cast<int>(rng.Below(static_cast<uint64_t>(hi - lo) + 1));
}

// bicubic for kRandom, whose per-image draw the caller makes.
ops::Interp InterpOf(TrainInterpolation interpolation) {
  return interpolation == TrainInterpolation::kBilinear ? ops::Interp::kBilinear
                                                        : ops::Interp::kBicubic;
}

// Maps a box on the stored image onto a decoded image that may be scaled down.
CropBox ScaleBox(const CropBox& box, int width, int height, const ImageSize& decoded) {
  if (decoded.width == width && decoded.height == height) return box;
  const double sx = static_cast<double>(decoded.width) / width;
  const double sy = static_cast<double>(decoded.height) / height;
  CropBox out;
  out.left = std::clamp(static_cast<int>(std::lround(box.left * sx)), 0, decoded.width - 1);
  out.top = std::clamp(static_cast<int>(std::lround(box.top * sy)), 0, decoded.height - 1);
  const int right = std::clamp(static_cast<int>(std::lround((box.left + box.width) * sx)),
                               out.left + 1, decoded.width);
  const int bottom = std::clamp(static_cast<int>(std::lround((box.top + box.height) * sy)),
                                out.top + 1, decoded.height);
  out.width = right - out.left;
  out.height = bottom - out.top;
  return out;
}

// torchvision ColorJitter(b, c, s) on PIL images: factors uniform in [max(0, 1-j), 1+j], drawn
// first, applied in a random order.
void ColorJitter(Image& img, double jitter, SampleRng& rng) {
  std::array<int, 4> order = {0, 1, 2, 3};  // 3 = hue, which the recipe leaves off
  for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.Below(i + 1)]);
  std::array<double, 3> factor;
  for (double& f : factor) f = rng.Uniform(std::max(0.0, 1 - jitter), 1 + jitter);
  for (int op : order) {
    if (op == 0) ops::Brightness(img, factor[0]);
    if (op == 1) ops::Contrast(img, factor[1]);
    if (op == 2) ops::Color(img, factor[2]);
  }
}

}  // namespace

absl::StatusOr<at::Tensor> Transform::ApplyExample(const Example& example, SampleRng& rng) const {
  if (example.encoded.empty()) return Apply(example.image, rng);
  absl::StatusOr<Image> image = DecodeImage(example.encoded, example.path);
  CONVNEXTV2_RETURN_IF_ERROR(image);
  return Apply(*image, rng);
}

absl::Status Transform::ApplyExampleInto(const Example& example, SampleRng& rng,
                                         float* out) const {
  absl::StatusOr<at::Tensor> x = ApplyExample(example, rng);
  CONVNEXTV2_RETURN_IF_ERROR(x);
  // memcpy, not copy_: ATen ops from loader threads could start an OpenMP team per thread.
  const at::Tensor sample = x->contiguous();
  std::memcpy(out, sample.data_ptr<float>(), sample.numel() * sizeof(float));
  return absl::OkStatus();
}

at::Tensor SmallImageTransform::Apply(const Image& image, SampleRng& rng) const {
  const int s = options_.input_size;
  const bool flip = options_.hflip > 0 && rng.Bernoulli(options_.hflip);
  at::Tensor src = at::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                 {image.height, image.width, image.channels}, at::kByte)
                       .permute({2, 0, 1})
                       .to(at::kFloat)
                       .div_(255.0);
  if (image.channels == 1) src = src.expand({3, image.height, image.width});
  at::Tensor out;
  const bool fits = image.height <= s && image.width <= s && s < 2 * image.height &&
                    s < 2 * image.width;
  if (fits) {
    out = at::zeros({3, s, s});
    const int top = (s - image.height) / 2, left = (s - image.width) / 2;
    out.narrow(1, top, image.height).narrow(2, left, image.width).copy_(src);
  } else {
    out = at::upsample_bilinear2d(src.unsqueeze(0).contiguous(), {s, s},
                                  /*align_corners=*/false)
              .squeeze(0)
              .clamp_(0.0, 1.0);
  }
  if (flip) out = out.flip({2});
  const at::Tensor mean = at::tensor({options_.mean[0], options_.mean[1], options_.mean[2]});
  const at::Tensor std = at::tensor({options_.std[0], options_.std[1], options_.std[2]});
  return ((out - mean.view({3, 1, 1})) / std.view({3, 1, 1})).contiguous();
}

CropBox RandomResizedCropBox(int width, int height, double scale_min, double scale_max,
                             double ratio_min, double ratio_max, SampleRng& rng) {
  const double area = static_cast<double>(width) * height;
  const double log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = rng.Uniform(scale_min, scale_max) * area;
    const double aspect = std::exp(rng.Uniform(log_lo, log_hi));
    const int w = static_cast<int>(std::lround(std::sqrt(target * aspect)));
    const int h = static_cast<int>(std::lround(std::sqrt(target / aspect)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      CropBox box{0, 0, h, w};
      box.top = RandInt(0, height - h, rng);
      box.left = RandInt(0, width - w, rng);
      return box;
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  CropBox box{0, 0, height, width};
  if (in_ratio < ratio_min) {
    box.height = static_cast<int>(std::lround(width / ratio_min));
  } else if (in_ratio > ratio_max) {
    box.width = static_cast<int>(std::lround(height * ratio_max));
  }
  box.top = (height - box.height) / 2;
  box.left = (width - box.width) / 2;
  return box;
}

void RandomErase(at::Tensor& chw, const EraseOptions& options, SampleRng& rng) {
  RandomErase(chw.data_ptr<float>(), static_cast<int>(chw.size(0)), static_cast<int>(chw.size(1)),
              static_cast<int>(chw.size(2)), options, rng);
}

void RandomErase(float* data, int c, int h, int w, const EraseOptions& options,
                 SampleRng& rng) {
  if (options.probability <= 0 || rng.Uniform() > options.probability) return;
  const double area = static_cast<double>(h) * w;
  const int count = options.max_count <= 1 ? 1 : RandInt(1, options.max_count, rng);
  const double log_lo = std::log(0.3), log_hi = std::log(1 / 0.3);
  const bool pixel = options.mode == EraseMode::kPixel, rand = options.mode == EraseMode::kRand;
  for (int n = 0; n < count; ++n) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = rng.Uniform(0.02, 1.0 / 3.0) * area / count;
      const double aspect = std::exp(rng.Uniform(log_lo, log_hi));
      const int eh = static_cast<int>(std::lround(std::sqrt(target * aspect)));
      const int ew = static_cast<int>(std::lround(std::sqrt(target / aspect)));
      if (ew >= w || eh >= h) continue;
      const int top = RandInt(0, h - eh, rng);
      const int left = RandInt(0, w - ew, rng);
      for (int ch = 0; ch < c; ++ch) {
        const float color = rand ? static_cast<float>(rng.Normal()) : 0.0f;
        for (int y = top; y < top + eh; ++y) {
          float* row = data + (static_cast<int64_t>(ch) * h + y) * w;
          if (pixel) {
            for (int x = left; x < left + ew; ++x) row[x] = static_cast<float>(rng.Normal());
          } else {
            std::fill(row + left, row + left + ew, color);
          }
        }
      }
      break;
    }
  }
}

void NormalizeInto(const Image& image, const std::array<float, 3>& mean,
                   const std::array<float, 3>& std, float* dst) {
  const int64_t hw = static_cast<int64_t>(image.height) * image.width;
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) lut[c][v] = (v / 255.0f - mean[c]) / std[c];
  }
  float* r = dst;
  float* g = dst + hw;
  float* b = dst + 2 * hw;
  const uint8_t* src = image.pixels.data();
  if (image.channels == 3) {  // one pass over the pixels, three planes out
    for (int64_t p = 0; p < hw; ++p, src += 3) {
      r[p] = lut[0][src[0]];
      g[p] = lut[1][src[1]];
      b[p] = lut[2][src[2]];
    }
  } else {  // gray, repeated
    for (int64_t p = 0; p < hw; ++p) {
      r[p] = lut[0][src[p]];
      g[p] = lut[1][src[p]];
      b[p] = lut[2][src[p]];
    }
  }
}

at::Tensor ToNormalizedTensor(const Image& image, const std::array<float, 3>& mean,
                              const std::array<float, 3>& std) {
  at::Tensor out = at::empty({3, image.height, image.width});
  NormalizeInto(image, mean, std, out.data_ptr<float>());
  return out;
}

CropBox TrainTransform::DrawBox(int width, int height, SampleRng& rng) const {
  if (!options_.small_crop) {
    return RandomResizedCropBox(width, height, options_.scale_min, options_.scale_max,
                                options_.ratio_min, options_.ratio_max, rng);
  }
  // RandomCrop(S, padding=4): the box is in padded coordinates.
  const int s = options_.input_size;
  CropBox box{0, 0, s, s};
  box.top = RandInt(0, std::max(height + 8 - s, 0), rng);
  box.left = RandInt(0, std::max(width + 8 - s, 0), rng);
  return box;
}

at::Tensor TrainTransform::Apply(const Image& image, SampleRng& rng) const {
  at::Tensor out = at::empty({3, options_.input_size, options_.input_size});
  if (image.channels != 3) {
    const Image rgb = ops::ToRgb(image);
    FinishInto(rgb, DrawBox(rgb.width, rgb.height, rng), rng, out.data_ptr<float>());
  } else {
    FinishInto(image, DrawBox(image.width, image.height, rng), rng, out.data_ptr<float>());
  }
  return out;
}

absl::StatusOr<at::Tensor> TrainTransform::ApplyExample(const Example& example,
                                                        SampleRng& rng) const {
  at::Tensor out = at::empty({3, options_.input_size, options_.input_size});
  CONVNEXTV2_RETURN_IF_ERROR(ApplyExampleInto(example, rng, out.data_ptr<float>()));
  return out;
}

absl::Status TrainTransform::ApplyExampleInto(const Example& example, SampleRng& rng,
                                              float* out) const {
  // Only JPEG headers are cheap to read and only JPEGs decode in part or at a reduced scale.
  if (!IsJpeg(example.encoded) || options_.small_crop) {
    Image decoded;
    const Image* image = &example.image;
    if (!example.encoded.empty()) {
      absl::StatusOr<Image> d = DecodeImage(example.encoded, example.path);
      CONVNEXTV2_RETURN_IF_ERROR(d);
      decoded = std::move(*d);
      image = &decoded;
    }
    if (image->channels != 3) {
      decoded = ops::ToRgb(*image);
      image = &decoded;
    }
    FinishInto(*image, DrawBox(image->width, image->height, rng), rng, out);
    return absl::OkStatus();
  }
  absl::StatusOr<ImageSize> size = PeekImageSize(example.encoded, example.path);
  CONVNEXTV2_RETURN_IF_ERROR(size);
  const CropBox box = DrawBox(size->width, size->height, rng);
  DecodeOptions decode;
  decode.dct_scaling = options_.dct_scaling;
  if (decode.dct_scaling) {
    // Keep the crop at or above output resolution after scaling.
    const double r = std::min(1.0, std::max(static_cast<double>(options_.input_size) / box.width,
                                            static_cast<double>(options_.input_size) / box.height));
    decode.min_width = static_cast<int>(std::ceil(size->width * r));
    decode.min_height = static_cast<int>(std::ceil(size->height * r));
  }
  // Only the box is decoded: the same pixels as decoding all and cropping, for less work.
  const CropBox scaled =
      ScaleBox(box, size->width, size->height, ScaledJpegSize(*size, decode));
  absl::StatusOr<Image> crop = DecodeJpegCrop(example.encoded, example.path, decode, scaled.top,
                                              scaled.left, scaled.height, scaled.width);
  CONVNEXTV2_RETURN_IF_ERROR(crop);
  FinishInto(*crop, CropBox{0, 0, crop->height, crop->width}, rng, out);
  return absl::OkStatus();
}

void TrainTransform::FinishInto(const Image& image, const CropBox& box, SampleRng& rng,
                                float* out) const {
  const int s = options_.input_size;
  Image img;
  if (options_.small_crop) {
    img = ops::Crop(ops::Pad(image, 4), box.top, box.left, std::min(s, image.height + 8),
                    std::min(s, image.width + 8));
    if (img.width != s || img.height != s) img = ops::Resize(img, s, s, ops::Interp::kBilinear);
  } else {
    ops::Interp interp = InterpOf(options_.interpolation);
    if (options_.interpolation == TrainInterpolation::kRandom) {
      interp = rng.Below(2) == 0 ? ops::Interp::kBilinear : ops::Interp::kBicubic;
    }
    const bool whole = box.top == 0 && box.left == 0 && box.height == image.height &&
                       box.width == image.width;
    img = whole ? ops::Resize(image, s, s, interp)
                : ops::Resize(ops::Crop(image, box.top, box.left, box.height, box.width), s, s,
                              interp);
  }
  if (options_.hflip > 0 && rng.Uniform() < options_.hflip) ops::FlipHorizontal(img);
  if (options_.rand_augment) {
    options_.rand_augment->Apply(img, rng);
  } else if (options_.color_jitter > 0) {
    ColorJitter(img, options_.color_jitter, rng);
  }
  NormalizeInto(img, options_.mean, options_.std, out);
  RandomErase(out, 3, s, s, options_.erase, rng);
}

ImageSize EvalTransform::ResizedSize(int width, int height) const {
  const int s = options_.input_size;
  if (s <= 32) return {width, height};
  if (s >= 384) return {s, s};
  const int shorter = static_cast<int>(s / options_.crop_pct);
  if (width <= height) {
    return {shorter, static_cast<int>(static_cast<int64_t>(shorter) * height / width)};
  }
  return {static_cast<int>(static_cast<int64_t>(shorter) * width / height), shorter};
}

at::Tensor EvalTransform::Apply(const Image& image, SampleRng& rng) const {
  const int s = options_.input_size;
  Image img = ops::ToRgb(image);
  const ImageSize size = ResizedSize(img.width, img.height);
  img = ops::Resize(img, size.width, size.height, ops::Interp::kBicubic);
  if (img.width != s || img.height != s) {
    const int cw = std::min(s, img.width), ch = std::min(s, img.height);
    img = ops::Crop(img, RoundHalfEven((img.height - ch) / 2.0),
                    RoundHalfEven((img.width - cw) / 2.0), ch, cw);
    // Only images smaller than the crop get here with a wrong size: stretch them.
    if (img.width != s || img.height != s) img = ops::Resize(img, s, s, ops::Interp::kBicubic);
  }
  return ToNormalizedTensor(img, options_.mean, options_.std);
}

absl::StatusOr<at::Tensor> EvalTransform::ApplyExample(const Example& example,
                                                       SampleRng& rng) const {
  // Only JPEG headers are cheap to read and only JPEGs decode at a reduced scale.
  if (!IsJpeg(example.encoded)) return Transform::ApplyExample(example, rng);
  absl::StatusOr<ImageSize> size = PeekImageSize(example.encoded, example.path);
  CONVNEXTV2_RETURN_IF_ERROR(size);
  const ImageSize target = ResizedSize(size->width, size->height);
  DecodeOptions decode;
  decode.dct_scaling = options_.dct_scaling;
  decode.min_width = target.width;
  decode.min_height = target.height;
  absl::StatusOr<Image> image = DecodeImage(example.encoded, example.path, decode);
  CONVNEXTV2_RETURN_IF_ERROR(image);
  // Resize straight to the size the stored image would get.
  Image resized = ops::Resize(*image, target.width, target.height, ops::Interp::kBicubic);
  return Apply(resized, rng);
}

namespace {

std::array<float, 3> Mean(const ExperimentConfig& c) {
  return c.data().imagenet_default_mean_and_std() ? kImagenetMean : kInceptionMean;
}
std::array<float, 3> Std(const ExperimentConfig& c) {
  return c.data().imagenet_default_mean_and_std() ? kImagenetStd : kInceptionStd;
}
// Whether the dataset registered as data.data_set takes the small-image transform.
absl::StatusOr<bool> SmallImages(const ExperimentConfig& c) {
  absl::StatusOr<const DatasetEntry*> dataset = FindDataset(c.data().data_set());
  if (!dataset.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("data.data_set: ", dataset.status().message()));
  }
  return (*dataset)->small_images;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Transform>> MakeTransform(const ExperimentConfig& config,
                                                         Split split) {
  const int s = config.model().input_size();
  const bool train = split == Split::kTrain;
  CONVNEXTV2_ASSIGN_OR_RETURN(const bool small, SmallImages(config));
  if (small) {
    SmallImageTransform::Options o;
    o.input_size = s;
    o.hflip = train ? config.aug().hflip() : 0.0;
    o.mean = Mean(config);
    o.std = Std(config);
    return std::unique_ptr<Transform>(new SmallImageTransform(o));
  }
  if (!train) {
    EvalTransform::Options o;
    o.input_size = s;
    if (config.data().has_crop_pct()) o.crop_pct = config.data().crop_pct();
    o.mean = Mean(config);
    o.std = Std(config);
    return std::unique_ptr<Transform>(new EvalTransform(o));
  }
  const AugmentConfig& a = config.aug();
  TrainTransform::Options o;
  o.input_size = s;
  o.small_crop = s <= 32;
  o.interpolation = TrainInterpolations().Of(a.train_interpolation());
  o.hflip = a.hflip();
  o.mean = Mean(config);
  o.std = Std(config);
  if (!a.aa().empty() && a.aa() != "none") {
    RandAugmentParams p;
    for (int c = 0; c < 3; ++c) p.fill[c] = static_cast<uint8_t>(std::lround(255 * o.mean[c]));
    if (o.interpolation == TrainInterpolation::kRandom) {
      p.interp.reset();
    } else {
      p.interp = InterpOf(o.interpolation);
    }
    absl::StatusOr<RandAugment> ra = RandAugment::Parse(a.aa(), p);
    CONVNEXTV2_RETURN_IF_ERROR(ra);
    o.rand_augment = std::move(*ra);
  } else if (a.has_color_jitter()) {
    o.color_jitter = a.color_jitter();
  }
  o.erase.probability = a.reprob();
  o.erase.mode = EraseModes().Of(a.remode());
  o.erase.max_count = a.recount();
  return std::unique_ptr<Transform>(new TrainTransform(std::move(o)));
}

absl::StatusOr<std::unique_ptr<Transform>> MakePretrainTransform(const ExperimentConfig& config) {
  CONVNEXTV2_ASSIGN_OR_RETURN(const bool small, SmallImages(config));
  if (small) return MakeTransform(config, Split::kTrain);
  TrainTransform::Options o;
  o.input_size = config.model().input_size();
  o.scale_min = 0.2;
  o.interpolation = TrainInterpolation::kBicubic;
  o.hflip = 0.5;
  o.mean = Mean(config);
  o.std = Std(config);
  return std::unique_ptr<Transform>(new TrainTransform(std::move(o)));
}

}  // namespace convnextv2::data
