// Tiny images encoded in tests (JPEG with libjpeg-turbo, PNG with OpenCV).
#ifndef CONVNEXTV2_TESTS_DATA_TEST_IMAGES_H_
#define CONVNEXTV2_TESTS_DATA_TEST_IMAGES_H_

#include <string>
#include <vector>

#include "convnextv2/data/dataset.h"

namespace convnextv2::data::testing {

// A smooth RGB gradient (w x h) with a bright square, so crops and flips are visible.
Image Gradient(int width, int height);
// JPEG bytes; channels 1 (grayscale) or 3 (RGB); cmyk: 4-channel Adobe-style CMYK JPEG of the
// RGB image (C = R, M = G, Y = B, K = 255, i.e. inverted CMYK as Adobe writes it).
// chroma: 444, 422 or 420 subsampling of color images; progressive: a progressive JPEG.
std::string EncodeJpeg(const Image& image, int quality = 95, bool cmyk = false, int chroma = 444,
                       bool progressive = false);
// PNG bytes of a 1- or 3-channel image.
std::string EncodePng(const Image& image);
void WriteBytes(const std::string& path, const std::string& bytes);
// $TEST_TMPDIR/name, emptied.
std::string TmpDir(const std::string& name);

}  // namespace convnextv2::data::testing

#endif  // CONVNEXTV2_TESTS_DATA_TEST_IMAGES_H_
