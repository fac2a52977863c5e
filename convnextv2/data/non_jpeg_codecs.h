// Decoders for the image formats other than JPEG, each on its own small library instead of
// OpenCV's imgcodecs (whose dependency closure, ~212 MB, cannot travel to a GPU machine):
// PNG (libpng), WebP (libwebp), TIFF (libtiff), BMP and PPM/PGM (here). Each gives the pixels
// cv::imdecode(bytes, IMREAD_COLOR) gave, in RGB order (non_jpeg_codecs_test holds them
// equal): alpha is dropped, not composited; 16-bit samples keep their high byte; grayscale and
// palettes become RGB. The decoders are internal to the data package (use DecodeImage in
// image_decode.h); EncodePng is public.
#ifndef CONVNEXTV2_DATA_NON_JPEG_CODECS_H_
#define CONVNEXTV2_DATA_NON_JPEG_CODECS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/data/dataset.h"

namespace convnextv2::data::internal {

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kTiff, kBmp, kPnm };

// From the first bytes (magic numbers), not from a file name.
ImageFormat SniffFormat(absl::string_view bytes);

// Decoders of one format each; errors are DataLoss naming `path`.
absl::StatusOr<Image> DecodePng(absl::string_view bytes, absl::string_view path);
absl::StatusOr<Image> DecodeWebp(absl::string_view bytes, absl::string_view path);
absl::StatusOr<Image> DecodeTiff(absl::string_view bytes, absl::string_view path);
absl::StatusOr<Image> DecodeBmp(absl::string_view bytes, absl::string_view path);
absl::StatusOr<Image> DecodePnm(absl::string_view bytes, absl::string_view path);

}  // namespace convnextv2::data::internal

namespace convnextv2::data {

// 8-bit RGB (channels 3) or grayscale (channels 1) to PNG bytes (libpng, default compression);
// public (the FCMAE reconstruction grids are written with it).
absl::StatusOr<std::string> EncodePng(const Image& image);

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_NON_JPEG_CODECS_H_
