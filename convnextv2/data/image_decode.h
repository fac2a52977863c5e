// Image decoding: JPEG with libjpeg-turbo (DCT-domain downscaling); PNG (libpng), WebP
// (libwebp), TIFF (libtiff), BMP and PPM/PGM through non_jpeg_codecs.h, without OpenCV imgcodecs.
//
// Every decoded image is 8-bit RGB (grayscale and CMYK/YCCK are converted). A corrupt or truncated
// file is an absl::DataLossError naming the path, never a crash.
//
//   absl::StatusOr<ImageSize> size = PeekImageSize(bytes, path);       // header only
//   // Decode at least 300x200 pixels: a JPEG may come out smaller than stored (1/2, 1/4 ...).
//   absl::StatusOr<Image> image = DecodeImage(bytes, path, {.min_width = 300, .min_height = 200});
//   // Only a 100x80 box at (top 20, left 30) of that: much less work.
//   absl::StatusOr<Image> box = DecodeJpegCrop(bytes, path, {...}, 20, 30, 80, 100);
#ifndef CONVNEXTV2_DATA_IMAGE_DECODE_H_
#define CONVNEXTV2_DATA_IMAGE_DECODE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "convnextv2/data/dataset.h"

namespace convnextv2::data {

struct ImageSize {
  int width = 0;
  int height = 0;
};

struct DecodeOptions {
  // The decoded image must be at least this large; 0 = full size. A JPEG is decoded at the
  // smallest libjpeg-turbo scaling factor (k/8, k = 1..8) that keeps both sides at or above
  // these, which skips most of the inverse DCT work when the crop will be shrunk anyway.
  int min_width = 0;
  int min_height = 0;
  // false: always decode at full size (for comparisons and exact pixels).
  bool dct_scaling = true;
};

// True when the bytes start like a JPEG (FF D8 FF).
bool IsJpeg(absl::string_view bytes);

// Width and height from the header alone (JPEG: cheap; other formats: a full decode).
absl::StatusOr<ImageSize> PeekImageSize(absl::string_view bytes, absl::string_view path);

// Decodes to RGB. `path` only names the file in errors.
absl::StatusOr<Image> DecodeImage(absl::string_view bytes, absl::string_view path,
                                  const DecodeOptions& options = {});

// The size DecodeImage gives a JPEG stored at `stored` under `options` (its DCT scale).
ImageSize ScaledJpegSize(ImageSize stored, const DecodeOptions& options);

// Rows [top, top + height) x columns [left, left + width) of DecodeImage(bytes, path, options)
// (a JPEG, IsJpeg), decoding only what they need: the rows above the box are entropy-decoded
// but not transformed, the rows below it are not read, and only the block columns over the box
// are transformed. The same pixels as decoding all and cropping (tested). The box must lie in
// ScaledJpegSize. A truncated file is still an error when the box ends above the damage.
absl::StatusOr<Image> DecodeJpegCrop(absl::string_view bytes, absl::string_view path,
                                     const DecodeOptions& options, int top, int left, int height,
                                     int width);

// Reads and decodes a file (NotFound / DataLoss errors name the path).
absl::StatusOr<Image> ReadImage(const std::string& path, const DecodeOptions& options = {});

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_IMAGE_DECODE_H_
