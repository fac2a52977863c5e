#include "convnextv2/data/augment_ops.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <glog/logging.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace convnextv2::data::ops {
namespace {

cv::Mat Wrap(Image& img) {
  return cv::Mat(img.height, img.width, CV_8UC3, img.pixels.data());
}

cv::Mat WrapConst(const Image& img) {
  return cv::Mat(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.pixels.data()));
}

Image Blank(int height, int width) {
  Image out;
  out.height = height;
  out.width = width;
  out.channels = 3;
  out.pixels.assign(static_cast<size_t>(height) * width * 3, 0);
  return out;
}

void ApplyLut(Image& img, const std::array<uint8_t, 256>& lut) {
  for (uint8_t& v : img.pixels) v = lut[v];
}

void ApplyLuts(Image& img, const std::array<std::array<uint8_t, 256>, 3>& luts) {
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    for (int c = 0; c < 3; ++c) img.pixels[i + c] = luts[c][img.pixels[i + c]];
  }
}

// PIL's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point.
inline uint8_t Luma(const uint8_t* p) {
  return static_cast<uint8_t>((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 0x8000) >> 16);
}

inline uint8_t Clip8(float v) {
  // PIL's ImagingBlend truncates toward zero before clipping.
  if (v <= 0) return 0;
  if (v >= 255) return 255;
  return static_cast<uint8_t>(v);
}

// Image.blend(degenerate, img, factor) = degenerate + factor * (img - degenerate), in single
// precision as PIL computes it (1 - 0.9 must still scale 100 to 10).
inline uint8_t Blend(float d, uint8_t v, float a) {
  return Clip8(d + a * (static_cast<float>(v) - d));
}

// Blend with a constant degenerate image: a table of the 256 results.
void BlendWithConstant(Image& img, uint8_t degenerate, double factor) {
  const float a = static_cast<float>(factor), d = degenerate;
  std::array<uint8_t, 256> lut;
  for (int v = 0; v < 256; ++v) lut[v] = Blend(d, static_cast<uint8_t>(v), a);
  ApplyLut(img, lut);
}

// The loader runs one sample per thread; OpenCV's own worker pool inside each would
// oversubscribe the cores and spin.
void SingleThreadedOpenCv() {
  static std::once_flag once;
  std::call_once(once, [] { cv::setNumThreads(1); });
}

int CvInterp(Interp interp) {
  SingleThreadedOpenCv();
  return interp == Interp::kBicubic ? cv::INTER_CUBIC : cv::INTER_LINEAR;
}

std::array<uint8_t, 256> Identity() {
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(i);
  return lut;
}

}  // namespace

void Invert(Image& img) {
  for (uint8_t& v : img.pixels) v = static_cast<uint8_t>(255 - v);
}

void Posterize(Image& img, int bits) {
  if (bits >= 8) return;
  const uint8_t mask = static_cast<uint8_t>(~((1 << (8 - std::max(bits, 0))) - 1));
  for (uint8_t& v : img.pixels) v &= mask;
}

void Solarize(Image& img, int threshold) {
  for (uint8_t& v : img.pixels) {
    if (v >= threshold) v = static_cast<uint8_t>(255 - v);
  }
}

void SolarizeAdd(Image& img, int add, int threshold) {
  std::array<uint8_t, 256> lut;
  for (int i = 0; i < 256; ++i) {
    lut[i] = static_cast<uint8_t>(i < threshold ? std::clamp(i + add, 0, 255) : i);
  }
  ApplyLut(img, lut);
}

void AutoContrast(Image& img) {
  std::array<std::array<uint8_t, 256>, 3> luts;
  for (int c = 0; c < 3; ++c) {
    int lo = 255, hi = 0;
    for (size_t i = c; i < img.pixels.size(); i += 3) {
      lo = std::min<int>(lo, img.pixels[i]);
      hi = std::max<int>(hi, img.pixels[i]);
    }
    luts[c] = Identity();
    if (hi <= lo) continue;
    const double scale = 255.0 / (hi - lo), offset = -lo * scale;
    for (int v = 0; v < 256; ++v) {
      luts[c][v] = static_cast<uint8_t>(std::clamp(static_cast<int>(v * scale + offset), 0, 255));
    }
  }
  ApplyLuts(img, luts);
}

void Equalize(Image& img) {
  std::array<std::array<uint8_t, 256>, 3> luts;
  for (int c = 0; c < 3; ++c) {
    std::array<int64_t, 256> hist{};
    for (size_t i = c; i < img.pixels.size(); i += 3) ++hist[img.pixels[i]];
    luts[c] = Identity();
    int64_t total = 0, last = 0, nonzero = 0;
    for (int64_t h : hist) {
      if (h == 0) continue;
      total += h;
      last = h;
      ++nonzero;
    }
    if (nonzero <= 1) continue;
    const int64_t step = (total - last) / 255;
    if (step == 0) continue;
    int64_t n = step / 2;
    for (int v = 0; v < 256; ++v) {
      luts[c][v] = static_cast<uint8_t>(std::min<int64_t>(n / step, 255));
      n += hist[v];
    }
  }
  ApplyLuts(img, luts);
}

void Color(Image& img, double factor) {
  const float a = static_cast<float>(factor);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    uint8_t* p = &img.pixels[i];
    const float gray = Luma(p);
    for (int c = 0; c < 3; ++c) p[c] = Blend(gray, p[c], a);
  }
}

void Contrast(Image& img, double factor) {
  double sum = 0;
  const size_t n = img.pixels.size() / 3;
  for (size_t i = 0; i < img.pixels.size(); i += 3) sum += Luma(&img.pixels[i]);
  const uint8_t mean = static_cast<uint8_t>(static_cast<int>(sum / std::max<size_t>(n, 1) + 0.5));
  BlendWithConstant(img, mean, factor);
}

void Brightness(Image& img, double factor) { BlendWithConstant(img, 0, factor); }

void Sharpness(Image& img, double factor) {
  // PIL's SMOOTH: [[1 1 1] [1 5 1] [1 1 1]] / 13 on the interior; the border is kept (and a
  // blend of a pixel with itself is the pixel).
  const int w = img.width, h = img.height;
  if (w < 3 || h < 3) return;
  const float a = static_cast<float>(factor);
  const size_t stride = static_cast<size_t>(w) * 3;
  // Rows are blended one behind the smoothing, which reads the unblended rows above.
  std::vector<uint8_t> above(img.pixels.begin(), img.pixels.begin() + stride), here(stride),
      out(stride);
  for (int y = 1; y + 1 < h; ++y) {
    uint8_t* row = img.pixels.data() + y * stride;
    const uint8_t* below = row + stride;
    std::copy(row, row + stride, here.begin());
    std::copy(row, row + stride, out.begin());
    for (size_t i = 3; i + 3 < stride; ++i) {
      const int sum = above[i - 3] + above[i] + above[i + 3] + here[i - 3] + 5 * here[i] +
                      here[i + 3] + below[i - 3] + below[i] + below[i + 3];
      out[i] = Blend(static_cast<float>((sum + 6) / 13), here[i], a);
    }
    std::copy(out.begin(), out.end(), row);
    above.swap(here);
  }
}

void Affine(Image& img, const std::array<double, 6>& m, Interp interp, const Fill& fill) {
  // PIL samples input (m * (out + 0.5)) in a frame where pixel centers sit at +0.5; OpenCV's
  // centers sit at integers: in_cv = m * out_cv + (m * 0.5 + t - 0.5).
  cv::Mat map = (cv::Mat_<double>(2, 3) << m[0], m[1], m[2] + 0.5 * (m[0] + m[1]) - 0.5,  //
                 m[3], m[4], m[5] + 0.5 * (m[3] + m[4]) - 0.5);
  Image out = Blank(img.height, img.width);
  cv::Mat dst = Wrap(out);
  cv::warpAffine(Wrap(img), dst, map, dst.size(), CvInterp(interp) | cv::WARP_INVERSE_MAP,
                 cv::BORDER_CONSTANT, cv::Scalar(fill[0], fill[1], fill[2]));
  img = std::move(out);
}

void Rotate(Image& img, double degrees, Interp interp, const Fill& fill) {
  // PIL's Image.rotate(expand=False): input = R(-angle) (out - c) + c, c = (w/2, h/2).
  const double a = -degrees * M_PI / 180.0;
  const double cx = img.width / 2.0, cy = img.height / 2.0;
  const double c = std::cos(a), s = std::sin(a);
  Affine(img, {c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy}, interp, fill);
}

void ShearX(Image& img, double factor, Interp interp, const Fill& fill) {
  Affine(img, {1, factor, 0, 0, 1, 0}, interp, fill);
}

void ShearY(Image& img, double factor, Interp interp, const Fill& fill) {
  Affine(img, {1, 0, 0, factor, 1, 0}, interp, fill);
}

void TranslateX(Image& img, double pixels, Interp interp, const Fill& fill) {
  Affine(img, {1, 0, pixels, 0, 1, 0}, interp, fill);
}

void TranslateY(Image& img, double pixels, Interp interp, const Fill& fill) {
  Affine(img, {1, 0, 0, 0, 1, pixels}, interp, fill);
}

void FlipHorizontal(Image& img) {
  // Whole 3-byte pixels reversed per row (the compiler moves each as one unit, not three swaps).
  struct Pixel {
    uint8_t v[3];
  };
  static_assert(sizeof(Pixel) == 3);
  for (int y = 0; y < img.height; ++y) {
    auto* row =
        reinterpret_cast<Pixel*>(img.pixels.data() + static_cast<size_t>(y) * img.width * 3);
    std::reverse(row, row + img.width);
  }
}

Image Crop(const Image& img, int top, int left, int height, int width) {
  CHECK(top >= 0 && left >= 0 && top + height <= img.height && left + width <= img.width)
      << "crop box outside the image";
  Image out = Blank(height, width);
  for (int y = 0; y < height; ++y) {
    const uint8_t* src = img.pixels.data() + ((static_cast<size_t>(top) + y) * img.width + left) * 3;
    std::copy(src, src + static_cast<size_t>(width) * 3,
              out.pixels.data() + static_cast<size_t>(y) * width * 3);
  }
  return out;
}

Image Resize(const Image& img, int width, int height, Interp interp) {
  Image out = Blank(height, width);
  if (width == img.width && height == img.height) {
    out.pixels = img.pixels;
    return out;
  }
  SingleThreadedOpenCv();
  const bool shrink_much = img.width > 2 * width && img.height > 2 * height;
  cv::Mat dst = Wrap(out);
  cv::resize(WrapConst(img), dst, dst.size(), 0, 0,
             shrink_much ? cv::INTER_AREA : CvInterp(interp));
  return out;
}

Image Pad(const Image& img, int pad) {
  Image out = Blank(img.height + 2 * pad, img.width + 2 * pad);
  for (int y = 0; y < img.height; ++y) {
    std::copy(img.pixels.data() + static_cast<size_t>(y) * img.width * 3,
              img.pixels.data() + static_cast<size_t>(y + 1) * img.width * 3,
              out.pixels.data() + ((static_cast<size_t>(y) + pad) * out.width + pad) * 3);
  }
  return out;
}

Image ToRgb(const Image& img) {
  if (img.channels == 3) return img;
  CHECK_EQ(img.channels, 1) << "images have 1 or 3 channels";
  Image out = Blank(img.height, img.width);
  for (size_t i = 0; i < img.pixels.size(); ++i) {
    out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = img.pixels[i];
  }
  return out;
}

}  // namespace convnextv2::data::ops
