// Pixel operations of the training augmentations, on 8-bit RGB images, with PIL's semantics
// (timm applies them to PIL images): the RandAugment ops, crops, resizes and flips.
//
//   Image img = ...;                      // channels == 3
//   ops::Solarize(img, 128);              // v >= 128 -> 255 - v
//   ops::Rotate(img, 30.0, ops::Interp::kBicubic, {124, 116, 104});
//
// Geometric ops take PIL's conventions: Rotate is counter-clockwise about the image center,
// ShearX maps output (x, y) to input (x + f * y, y), Translate by whole-image pixel offsets,
// areas outside the input are filled with `fill`. Interpolation is OpenCV's (bicubic a = -0.75,
// PIL's is -0.5), so geometric ops match PIL up to a few intensity levels, not bit for bit.
#ifndef CONVNEXTV2_DATA_AUGMENT_OPS_H_
#define CONVNEXTV2_DATA_AUGMENT_OPS_H_

#include <array>
#include <cstdint>

#include "convnextv2/data/dataset.h"

namespace convnextv2::data::ops {

enum class Interp { kBilinear, kBicubic };
using Fill = std::array<uint8_t, 3>;

// Point ops (exact PIL ImageOps/ImageEnhance results).
void Invert(Image& img);
void Posterize(Image& img, int bits);                  // keep the top `bits` bits (0..8)
void Solarize(Image& img, int threshold);              // v >= threshold -> 255 - v
void SolarizeAdd(Image& img, int add, int threshold = 128);  // v < threshold -> min(255, v+add)
void AutoContrast(Image& img);                         // per channel, min -> 0, max -> 255
void Equalize(Image& img);                             // per-channel histogram equalization
// ImageEnhance: blend with a degenerate image by `factor` (1 = unchanged).
void Color(Image& img, double factor);       // degenerate: grayscale
void Contrast(Image& img, double factor);    // degenerate: the mean gray level
void Brightness(Image& img, double factor);  // degenerate: black
void Sharpness(Image& img, double factor);   // degenerate: PIL's SMOOTH 3x3 filter

// Geometry. `m` is PIL's inverse affine map: input = (m0 x + m1 y + m2, m3 x + m4 y + m5) for
// output pixel (x, y), in PIL's continuous coordinates (pixel centers at +0.5).
void Affine(Image& img, const std::array<double, 6>& m, Interp interp, const Fill& fill);
void Rotate(Image& img, double degrees, Interp interp, const Fill& fill);
void ShearX(Image& img, double factor, Interp interp, const Fill& fill);
void ShearY(Image& img, double factor, Interp interp, const Fill& fill);
void TranslateX(Image& img, double pixels, Interp interp, const Fill& fill);
void TranslateY(Image& img, double pixels, Interp interp, const Fill& fill);

void FlipHorizontal(Image& img);
// Pixels [top, top+height) x [left, left+width); the box must lie inside the image.
Image Crop(const Image& img, int top, int left, int height, int width);
// Resampled to width x height. Shrinking by more than 2x in both directions uses area
// averaging, which (like PIL's filters) does not alias.
Image Resize(const Image& img, int width, int height, Interp interp);
// Zero border of `pad` pixels on every side.
Image Pad(const Image& img, int pad);
// Grayscale / RGBA-free images to 3 channels (1 channel is repeated).
Image ToRgb(const Image& img);

}  // namespace convnextv2::data::ops

#endif  // CONVNEXTV2_DATA_AUGMENT_OPS_H_
