#include "convnextv2/data/image_decode.h"

#include <turbojpeg.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
// After <cstdio>: jpeglib.h uses FILE and size_t without including what declares them.
#include <jpeglib.h>
#include <jerror.h>

#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "convnextv2/data/non_jpeg_codecs.h"
#include "convnextv2/util/files.h"
#include "convnextv2/util/status_macros.h"

namespace convnextv2::data {
namespace {

// One decompressor per thread: tjInitDecompress allocates, and a handle is not thread-safe.
// A handle that failed on a corrupt file keeps state that makes the next, good file fail too
// ("Bogus Huffman table definition"), so a failure replaces it (DiscardThreadDecompressor).
class TjHandle {
 public:
  TjHandle() : handle_(tjInitDecompress()) {}
  ~TjHandle() {
    if (handle_ != nullptr) tjDestroy(handle_);
  }
  tjhandle get() const { return handle_; }
  void Renew() {
    if (handle_ != nullptr) tjDestroy(handle_);
    handle_ = tjInitDecompress();
  }

 private:
  tjhandle handle_;
};

TjHandle& ThreadHandle() {
  thread_local TjHandle handle;
  return handle;
}

tjhandle ThreadDecompressor() { return ThreadHandle().get(); }

void DiscardThreadDecompressor() { ThreadHandle().Renew(); }

absl::Status Corrupt(absl::string_view path, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("cannot decode image '", path, "': ", why));
}

constexpr int64_t kMaxJpegPixels = int64_t{1} << 28;  // 16384 x 16384

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
    const absl::Status error = Corrupt(path, tjGetErrorStr2(tj));
    DiscardThreadDecompressor();
    return error;
  }
  if (h.width <= 0 || h.height <= 0) return Corrupt(path, "empty JPEG");
  // A header can declare 65535 x 65535 over a few bytes of data: refuse before allocating.
  if (static_cast<int64_t>(h.width) * h.height > kMaxJpegPixels) {
    return Corrupt(path, absl::StrCat("declares ", h.width, "x", h.height,
                                      " pixels, more than the ", kMaxJpegPixels,
                                      " this decoder accepts"));
  }
  return h;
}

// Smallest factor <= 1 whose output still covers the requested size.
tjscalingfactor ChooseScale(int width, int height, const DecodeOptions& options) {
  tjscalingfactor scale = {1, 1};
  if (!options.dct_scaling || (options.min_width <= 0 && options.min_height <= 0)) return scale;
  int n = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&n);
  for (int i = 0; i < n; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num > f.denom) continue;
    if (TJSCALED(width, f) < options.min_width || TJSCALED(height, f) < options.min_height) {
      continue;
    }
    if (f.num * scale.denom < scale.num * f.denom) scale = f;
  }
  return scale;
}

// libjpeg reports fatal errors through error_exit, which must not return: it jumps back to
// CropRows with the message. A premature end of data is only a warning there (the source
// manager pads with an EOI), so it is recorded to fail the decode as tjDecompress2's caller does.
struct JpegErrors {
  jpeg_error_mgr mgr;  // first: libjpeg hands back a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void OnJpegError(j_common_ptr cinfo) {
  JpegErrors* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  longjmp(e->jump, 1);
}

void OnJpegMessage(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    reinterpret_cast<JpegErrors*>(cinfo->err)->truncated = true;
  }
}

// True when an EOI marker (FF D9) lies in the last bytes of the entropy-coded data from `from`
// on: there entropy-coded FF bytes are always followed by 00 or a restart marker, so the file
// is complete. (A file with a long trailer after its EOI gets a full check instead.)
bool EndsWithEoi(const uint8_t* data, size_t size, size_t from) {
  constexpr size_t kTail = 4096;
  const size_t begin = std::max(from, size > kTail ? size - kTail : 0);
  for (size_t i = size; i >= begin + 2; --i) {
    if (data[i - 2] == 0xFF && data[i - 1] == 0xD9) return true;
  }
  return false;
}

// The libjpeg part of DecodeJpegCrop, in C style: no object with a destructor lives across
// setjmp. Writes height x width RGB pixels to `out`, using `row` (scaled width x 3 bytes) as
// scratch. Returns false with e->message set on a libjpeg error.
bool CropRows(const uint8_t* data, size_t size, tjscalingfactor scale, int top, int left,
              int height, int width, uint8_t* out, uint8_t* row, JpegErrors* e) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&e->mgr);
  e->mgr.error_exit = OnJpegError;
  e->mgr.emit_message = OnJpegMessage;
  e->truncated = false;
  if (setjmp(e->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  const size_t scan_start = static_cast<size_t>(cinfo.src->next_input_byte - data);
  // What tjDecompress2(TJPF_RGB, TJFLAG_FASTDCT) sets, so the pixels are the same.
  cinfo.out_color_space = JCS_RGB;
  cinfo.dct_method = JDCT_IFAST;
  cinfo.scale_num = scale.num;
  cinfo.scale_denom = scale.denom;
  jpeg_start_decompress(&cinfo);
  // One pixel of context beyond each side of the box: fancy (triangle) chroma upsampling at the
  // edge of a cropped row replicates the edge sample instead of reading its neighbor.
  JDIMENSION x0 = left > 0 ? left - 1 : 0;
  JDIMENSION cw =
      std::min<JDIMENSION>(left + width + 1, cinfo.output_width) - x0;
  jpeg_crop_scanline(&cinfo, &x0, &cw);  // moves x0 left to a block column, widens cw
  if (top > 0) jpeg_skip_scanlines(&cinfo, top);
  const size_t offset = (left - x0) * 3, bytes = static_cast<size_t>(width) * 3;
  for (int y = 0; y < height; ++y) {
    JSAMPROW r = row;
    jpeg_read_scanlines(&cinfo, &r, 1);
    std::memcpy(out + y * bytes, row + offset, bytes);
  }
  // Rows below the box are not needed, but a truncated file must fail as a full decode would.
  if (cinfo.output_scanline < cinfo.output_height && !e->truncated &&
      !EndsWithEoi(data, size, scan_start)) {
    while (cinfo.output_scanline < cinfo.output_height) {
      JSAMPROW r = row;
      jpeg_read_scanlines(&cinfo, &r, 1);
    }
  }
  jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

absl::StatusOr<Image> DecodeJpeg(absl::string_view bytes, absl::string_view path,
                                 const DecodeOptions& options) {
  tjhandle tj = ThreadDecompressor();
  if (tj == nullptr) return absl::InternalError("tjInitDecompress failed");
  absl::StatusOr<JpegHeader> h = ReadJpegHeader(tj, bytes, path);
  CONVNEXTV2_RETURN_IF_ERROR(h);
  const tjscalingfactor scale = ChooseScale(h->width, h->height, options);
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
    // libjpeg reports the end of the data as a warning, and tjGetErrorStr2 says only the last
    // one: a progressive file cut inside a marker between scans ends with another. So a file
    // with warnings must also end with its EOI marker.
    const std::string why = tjGetErrorStr2(tj);
    // "Premature end of JPEG file", and "premature end of data segment": the entropy-coded data
    // ran out before the last row (libjpeg paints the rest grey).
    const bool fatal = tjGetErrorCode(tj) != TJERR_WARNING ||
                       absl::StrContains(absl::AsciiStrToLower(why), "premature end");
    DiscardThreadDecompressor();
    if (fatal) return Corrupt(path, why);
    if (!EndsWithEoi(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 0)) {
      return Corrupt(path, absl::StrCat(why, "; no end-of-image marker (truncated file)"));
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

// Everything but JPEG: one small library per format (codecs.h), no OpenCV imgcodecs.
absl::StatusOr<Image> DecodeOther(absl::string_view bytes, absl::string_view path) {
  if (bytes.empty()) return Corrupt(path, "empty file");
  switch (internal::SniffFormat(bytes)) {
    case internal::ImageFormat::kPng:
      return internal::DecodePng(bytes, path);
    case internal::ImageFormat::kWebp:
      return internal::DecodeWebp(bytes, path);
    case internal::ImageFormat::kTiff:
      return internal::DecodeTiff(bytes, path);
    case internal::ImageFormat::kBmp:
      return internal::DecodeBmp(bytes, path);
    case internal::ImageFormat::kPnm:
      return internal::DecodePnm(bytes, path);
    case internal::ImageFormat::kJpeg:  // handled by the caller
    case internal::ImageFormat::kUnknown:
      break;
  }
  return Corrupt(path, "unknown format (not JPEG, PNG, WebP, TIFF, BMP, PPM/PGM), or a corrupt "
                       "file");
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
    CONVNEXTV2_RETURN_IF_ERROR(h);
    return ImageSize{h->width, h->height};
  }
  absl::StatusOr<Image> image = DecodeOther(bytes, path);
  CONVNEXTV2_RETURN_IF_ERROR(image);
  return ImageSize{image->width, image->height};
}

absl::StatusOr<Image> DecodeImage(absl::string_view bytes, absl::string_view path,
                                  const DecodeOptions& options) {
  if (IsJpeg(bytes)) return DecodeJpeg(bytes, path, options);
  return DecodeOther(bytes, path);
}

ImageSize ScaledJpegSize(ImageSize stored, const DecodeOptions& options) {
  const tjscalingfactor scale = ChooseScale(stored.width, stored.height, options);
  return {TJSCALED(stored.width, scale), TJSCALED(stored.height, scale)};
}

absl::StatusOr<Image> DecodeJpegCrop(absl::string_view bytes, absl::string_view path,
                                     const DecodeOptions& options, int top, int left, int height,
                                     int width) {
  tjhandle tj = ThreadDecompressor();
  if (tj == nullptr) return absl::InternalError("tjInitDecompress failed");
  absl::StatusOr<JpegHeader> h = ReadJpegHeader(tj, bytes, path);
  CONVNEXTV2_RETURN_IF_ERROR(h);
  const tjscalingfactor scale = ChooseScale(h->width, h->height, options);
  const int scaled_width = TJSCALED(h->width, scale), scaled_height = TJSCALED(h->height, scale);
  if (top < 0 || left < 0 || height <= 0 || width <= 0 || top + height > scaled_height ||
      left + width > scaled_width) {
    return absl::InvalidArgumentError(absl::StrCat(
        "crop ", width, "x", height, " at (", left, ", ", top, ") outside the ", scaled_width,
        "x", scaled_height, " decode of '", path, "'"));
  }
  Image image;
  image.width = width;
  image.height = height;
  image.channels = 3;
  if (h->colorspace == TJCS_CMYK || h->colorspace == TJCS_YCCK) {
    // Rare; decode all and crop.
    absl::StatusOr<Image> full = DecodeJpeg(bytes, path, options);
    CONVNEXTV2_RETURN_IF_ERROR(full);
    image.pixels.resize(static_cast<size_t>(width) * height * 3);
    for (int y = 0; y < height; ++y) {
      std::memcpy(image.pixels.data() + static_cast<size_t>(y) * width * 3,
                  full->pixels.data() + ((static_cast<size_t>(top) + y) * full->width + left) * 3,
                  static_cast<size_t>(width) * 3);
    }
    return image;
  }
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  std::vector<uint8_t> row(static_cast<size_t>(scaled_width) * 3);
  JpegErrors errors;
  if (!CropRows(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), scale, top, left,
                height, width, image.pixels.data(), row.data(), &errors)) {
    return Corrupt(path, errors.message);
  }
  if (errors.truncated) return Corrupt(path, "Premature end of JPEG file");
  return image;
}

absl::StatusOr<Image> ReadImage(const std::string& path, const DecodeOptions& options) {
  absl::StatusOr<std::string> bytes = util::ReadFile(path);
  CONVNEXTV2_RETURN_IF_ERROR(bytes);
  return DecodeImage(*bytes, path, options);
}

}  // namespace convnextv2::data
