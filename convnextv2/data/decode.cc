#include "convnextv2/data/decode.h"

#include <turbojpeg.h>

#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/util/files.h"

namespace convnextv2::data {
namespace {

// One decompressor per thread: tjInitDecompress allocates, and a handle is not thread-safe.
class TjHandle {
 public:
  TjHandle() : handle_(tjInitDecompress()) {}
  ~TjHandle() {
    if (handle_ != nullptr) tjDestroy(handle_);
  }
  tjhandle get() const { return handle_; }

 private:
  tjhandle handle_;
};

tjhandle ThreadDecompressor() {
  thread_local TjHandle handle;
  return handle.get();
}

absl::Status Corrupt(absl::string_view path, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("cannot decode image '", path, "': ", why));
}

struct JpegHeader {
  int width = 0, height = 0, colorspace = 0;
};

absl::StatusOr<JpegHeader> ReadJpegHeader(tjhandle tj, absl::string_view bytes,
                                          absl::string_view path) {
  JpegHeader h;
  int subsamp = 0;
  if (tjDecompressHeader3(tj, reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<unsigned long>(bytes.size()), &h.width, &h.height, &subsamp,
                          &h.colorspace) != 0) {
    return Corrupt(path, tjGetErrorStr2(tj));
  }
  if (h.width <= 0 || h.height <= 0) return Corrupt(path, "empty JPEG");
  return h;
}

absl::StatusOr<Image> DecodeJpeg(absl::string_view bytes, absl::string_view path,
                                 const DecodeOptions& options) {
  tjhandle tj = ThreadDecompressor();
  if (tj == nullptr) return absl::InternalError("tjInitDecompress failed");
  absl::StatusOr<JpegHeader> h = ReadJpegHeader(tj, bytes, path);
  if (!h.ok()) return h.status();
  tjscalingfactor scale = {1, 1};
  if (options.dct_scaling && (options.min_width > 0 || options.min_height > 0)) {
    int n = 0;
    const tjscalingfactor* factors = tjGetScalingFactors(&n);
    // Smallest factor <= 1 whose output still covers the requested size.
    for (int i = 0; i < n; ++i) {
      const tjscalingfactor f = factors[i];
      if (f.num > f.denom) continue;
      if (TJSCALED(h->width, f) < options.min_width ||
          TJSCALED(h->height, f) < options.min_height) {
        continue;
      }
      if (f.num * scale.denom < scale.num * f.denom) scale = f;
    }
  }
  Image image;
  image.width = TJSCALED(h->width, scale);
  image.height = TJSCALED(h->height, scale);
  image.channels = 3;
  const bool cmyk = h->colorspace == TJCS_CMYK || h->colorspace == TJCS_YCCK;
  std::vector<uint8_t> buffer(static_cast<size_t>(image.width) * image.height * (cmyk ? 4 : 3));
  const int rc = tjDecompress2(tj, reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<unsigned long>(bytes.size()), buffer.data(),
                               image.width, 0, image.height, cmyk ? TJPF_CMYK : TJPF_RGB,
                               TJFLAG_FASTDCT);
  if (rc != 0) {
    // Warnings (e.g. "Corrupt JPEG data: N extraneous bytes before marker") leave a usable
    // image and PIL accepts them too; a truncated file does not.
    const std::string why = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) != TJERR_WARNING || absl::StrContains(why, "Premature end")) {
      return Corrupt(path, why);
    }
  }
  if (!cmyk) {
    image.pixels = std::move(buffer);
    return image;
  }
  // Adobe writes inverted CMYK; libjpeg hands it back as stored, so RGB = C * K / 255 (what
  // PIL and OpenCV do too).
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  for (size_t p = 0, n = image.pixels.size() / 3; p < n; ++p) {
    const int k = buffer[4 * p + 3];
    for (int c = 0; c < 3; ++c) {
      image.pixels[3 * p + c] = static_cast<uint8_t>((buffer[4 * p + c] * k + 127) / 255);
    }
  }
  return image;
}

absl::StatusOr<Image> DecodeWithOpenCv(absl::string_view bytes, absl::string_view path) {
  if (bytes.empty()) return Corrupt(path, "empty file");
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1,
                    const_cast<char*>(bytes.data()));
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return Corrupt(path, e.what());
  }
  if (bgr.empty()) return Corrupt(path, "unknown format, or a corrupt or truncated file");
  Image image;
  image.width = bgr.cols;
  image.height = bgr.rows;
  image.channels = 3;
  image.pixels.resize(static_cast<size_t>(image.width) * image.height * 3);
  cv::Mat rgb(image.height, image.width, CV_8UC3, image.pixels.data());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return image;
}

}  // namespace

bool IsJpeg(absl::string_view bytes) {
  return bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
         static_cast<uint8_t>(bytes[1]) == 0xD8 && static_cast<uint8_t>(bytes[2]) == 0xFF;
}

absl::StatusOr<ImageSize> PeekImageSize(absl::string_view bytes, absl::string_view path) {
  if (IsJpeg(bytes)) {
    tjhandle tj = ThreadDecompressor();
    if (tj == nullptr) return absl::InternalError("tjInitDecompress failed");
    absl::StatusOr<JpegHeader> h = ReadJpegHeader(tj, bytes, path);
    if (!h.ok()) return h.status();
    return ImageSize{h->width, h->height};
  }
  absl::StatusOr<Image> image = DecodeWithOpenCv(bytes, path);
  if (!image.ok()) return image.status();
  return ImageSize{image->width, image->height};
}

absl::StatusOr<Image> DecodeImage(absl::string_view bytes, absl::string_view path,
                                  const DecodeOptions& options) {
  if (IsJpeg(bytes)) return DecodeJpeg(bytes, path, options);
  return DecodeWithOpenCv(bytes, path);
}

absl::StatusOr<Image> ReadImage(const std::string& path, const DecodeOptions& options) {
  absl::StatusOr<std::string> bytes = util::ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return DecodeImage(*bytes, path, options);
}

}  // namespace convnextv2::data
