#include "convnextv2/data/non_jpeg_codecs.h"

#include <png.h>
#include <tiffio.h>
#include <webp/decode.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace convnextv2::data::internal {
namespace {

absl::Status Corrupt(absl::string_view path, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("cannot decode image '", path, "': ", why));
}

// Images above this many pixels are refused (a corrupt header must not allocate terabytes).
constexpr int64_t kMaxPixels = int64_t{1} << 31;

absl::Status CheckSize(int64_t width, int64_t height, absl::string_view path) {
  if (width <= 0 || height <= 0) {
    return Corrupt(path, absl::StrCat("bad size ", width, "x", height));
  }
  if (width * height > kMaxPixels || width > std::numeric_limits<int>::max() ||
      height > std::numeric_limits<int>::max()) {
    return Corrupt(path, absl::StrCat("image too large: ", width, "x", height));
  }
  return absl::OkStatus();
}

Image RgbImage(int width, int height) {
  Image image;
  image.width = width;
  image.height = height;
  image.channels = 3;
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  return image;
}

// ---- PNG (libpng's classic API, with the transforms OpenCV 4.6's PngDecoder applies for
// IMREAD_COLOR: strip 16 bits to the high byte, strip alpha, palette and gray to RGB).

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  char message[256] = {0};
};

void OnPngError(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof(r->message), "%s", msg);
  longjmp(png_jmpbuf(png), 1);
}

void OnPngWarning(png_structp, png_const_charp) {}

void ReadPngBytes(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "truncated file");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

// C style (no object with a destructor lives across setjmp). Returns false with r->message.
bool ReadPngHeader(PngReader* r, png_uint_32* width, png_uint_32* height) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  png_set_read_fn(r->png, r, ReadPngBytes);
  png_read_info(r->png, r->info);
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(r->png, r->info, width, height, &bit_depth, &color_type, nullptr, nullptr,
               nullptr);
  if (bit_depth == 16) png_set_strip_16(r->png);
  png_set_strip_alpha(r->png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) {
    png_set_expand_gray_1_2_4_to_8(r->png);
  }
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(r->png);
  png_set_interlace_handling(r->png);
  png_read_update_info(r->png, r->info);
  if (png_get_rowbytes(r->png, r->info) != static_cast<size_t>(*width) * 3) {
    png_error(r->png, "unexpected row layout after conversion to RGB");
  }
  return true;
}

bool ReadPngRows(PngReader* r, png_bytepp rows) {
  if (setjmp(png_jmpbuf(r->png))) return false;
  png_read_image(r->png, rows);
  png_read_end(r->png, nullptr);
  return true;
}

// ---- TIFF from memory (libtiff client procs).

struct TiffSource {
  const uint8_t* data;
  toff_t size;
  toff_t pos;
};

tsize_t TiffRead(thandle_t h, tdata_t buf, tsize_t n) {
  auto* s = static_cast<TiffSource*>(h);
  const toff_t left = s->pos < s->size ? s->size - s->pos : 0;
  const toff_t count = std::min<toff_t>(left, static_cast<toff_t>(n));
  std::memcpy(buf, s->data + s->pos, count);
  s->pos += count;
  return static_cast<tsize_t>(count);
}
tsize_t TiffWrite(thandle_t, tdata_t, tsize_t) { return 0; }
toff_t TiffSeek(thandle_t h, toff_t off, int whence) {
  auto* s = static_cast<TiffSource*>(h);
  toff_t base = whence == SEEK_CUR ? s->pos : whence == SEEK_END ? s->size : 0;
  s->pos = base + off;
  return s->pos;
}
int TiffClose(thandle_t) { return 0; }
toff_t TiffSize(thandle_t h) { return static_cast<TiffSource*>(h)->size; }
int TiffMap(thandle_t, tdata_t*, toff_t*) { return 0; }
void TiffUnmap(thandle_t, tdata_t, toff_t) {}

// libtiff reports through global handlers; keep the last message per thread for the Status.
thread_local std::string tiff_message;
void OnTiffError(const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  tiff_message = absl::StrCat(module != nullptr ? module : "libtiff", ": ", buf);
}

// ---- BMP and PNM helpers.

uint32_t Le32(const uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

ImageFormat SniffFormat(absl::string_view bytes) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (n >= 12 && std::memcmp(b, "RIFF", 4) == 0 && std::memcmp(b + 8, "WEBP", 4) == 0) {
    return ImageFormat::kWebp;
  }
  if (n >= 4 && (std::memcmp(b, "II*\0", 4) == 0 || std::memcmp(b, "MM\0*", 4) == 0)) {
    return ImageFormat::kTiff;
  }
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return ImageFormat::kBmp;
  if (n >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return ImageFormat::kPnm;
  return ImageFormat::kUnknown;
}

absl::StatusOr<Image> DecodePng(absl::string_view bytes, absl::string_view path) {
  PngReader r;
  r.data = reinterpret_cast<const uint8_t*>(bytes.data());
  r.size = bytes.size();
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, OnPngError, OnPngWarning);
  if (r.png == nullptr) return absl::InternalError("png_create_read_struct failed");
  r.info = png_create_info_struct(r.png);
  if (r.info == nullptr) {
    png_destroy_read_struct(&r.png, nullptr, nullptr);
    return absl::InternalError("png_create_info_struct failed");
  }
  png_uint_32 width = 0, height = 0;
  absl::StatusOr<Image> result;
  if (!ReadPngHeader(&r, &width, &height)) {
    result = Corrupt(path, r.message);
  } else if (absl::Status size = CheckSize(width, height, path); !size.ok()) {
    result = size;
  } else {
    Image image = RgbImage(static_cast<int>(width), static_cast<int>(height));
    std::vector<png_bytep> rows(height);
    for (png_uint_32 y = 0; y < height; ++y) {
      rows[y] = image.pixels.data() + static_cast<size_t>(y) * width * 3;
    }
    if (ReadPngRows(&r, rows.data())) {
      result = std::move(image);
    } else {
      result = Corrupt(path, r.message);
    }
  }
  png_destroy_read_struct(&r.png, &r.info, nullptr);
  return result;
}

absl::StatusOr<Image> DecodeWebp(absl::string_view bytes, absl::string_view path) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  int width = 0, height = 0;
  if (!WebPGetInfo(data, bytes.size(), &width, &height)) {
    return Corrupt(path, "not a valid WebP header");
  }
  if (absl::Status size = CheckSize(width, height, path); !size.ok()) return size;
  Image image = RgbImage(width, height);
  if (WebPDecodeRGBInto(data, bytes.size(), image.pixels.data(), image.pixels.size(),
                        width * 3) == nullptr) {
    return Corrupt(path, "WebP decoding failed (corrupt or truncated file)");
  }
  return image;
}

absl::StatusOr<Image> DecodeTiff(absl::string_view bytes, absl::string_view path) {
  TiffSource source{reinterpret_cast<const uint8_t*>(bytes.data()),
                    static_cast<toff_t>(bytes.size()), 0};
  tiff_message.clear();
  static const bool handlers_set = [] {
    TIFFSetErrorHandler(OnTiffError);
    TIFFSetWarningHandler(nullptr);
    return true;
  }();
  (void)handlers_set;
  TIFF* tif = TIFFClientOpen("memory", "rm", &source, TiffRead, TiffWrite, TiffSeek, TiffClose,
                             TiffSize, TiffMap, TiffUnmap);
  if (tif == nullptr) return Corrupt(path, tiff_message.empty() ? "not a TIFF" : tiff_message);
  uint32_t width = 0, height = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &height);
  absl::StatusOr<Image> result;
  if (absl::Status size = CheckSize(width, height, path); !size.ok()) {
    result = size;
  } else {
    std::vector<uint32_t> raster(static_cast<size_t>(width) * height);
    if (!TIFFReadRGBAImageOriented(tif, width, height, raster.data(), ORIENTATION_TOPLEFT,
                                   /*stop_on_error=*/1)) {
      result = Corrupt(path, tiff_message.empty() ? "TIFF decoding failed" : tiff_message);
    } else {
      Image image = RgbImage(static_cast<int>(width), static_cast<int>(height));
      for (size_t i = 0; i < raster.size(); ++i) {
        image.pixels[3 * i] = static_cast<uint8_t>(TIFFGetR(raster[i]));
        image.pixels[3 * i + 1] = static_cast<uint8_t>(TIFFGetG(raster[i]));
        image.pixels[3 * i + 2] = static_cast<uint8_t>(TIFFGetB(raster[i]));
      }
      result = std::move(image);
    }
  }
  TIFFClose(tif);
  return result;
}

absl::StatusOr<Image> DecodeBmp(absl::string_view bytes, absl::string_view path) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  if (n < 26) return Corrupt(path, "truncated BMP header");
  const uint32_t offset = Le32(b + 10);
  const uint32_t header = Le32(b + 14);
  if (header < 40 || n < 14 + static_cast<size_t>(header)) {
    return Corrupt(path, absl::StrCat("unsupported BMP header of ", header, " bytes"));
  }
  const int32_t width = static_cast<int32_t>(Le32(b + 18));
  const int32_t raw_height = static_cast<int32_t>(Le32(b + 22));
  const int bpp = Le16(b + 28);
  const uint32_t compression = Le32(b + 30);
  const bool top_down = raw_height < 0;
  const int64_t height = top_down ? -static_cast<int64_t>(raw_height) : raw_height;
  if (absl::Status size = CheckSize(width, height, path); !size.ok()) return size;
  // BI_RGB, or BI_BITFIELDS with the usual 8-bit masks at 32 bits per pixel.
  const bool bitfields = compression == 3 && bpp == 32 && n >= 14 + 40 + 12 &&
                         Le32(b + 54) == 0xFF0000u && Le32(b + 58) == 0xFF00u &&
                         Le32(b + 62) == 0xFFu;
  if (!(compression == 0 || bitfields) ||
      !(bpp == 1 || bpp == 4 || bpp == 8 || bpp == 24 || bpp == 32)) {
    return Corrupt(path, absl::StrCat("unsupported BMP: ", bpp, " bits per pixel, compression ",
                                      compression, " (supported: uncompressed 1/4/8/24/32-bit)"));
  }
  std::vector<uint8_t> palette;  // RGB triples
  if (bpp <= 8) {
    uint32_t colors = Le32(b + 46);
    if (colors == 0 || colors > (1u << bpp)) colors = 1u << bpp;
    const size_t at = 14 + header;
    if (n < at + 4 * static_cast<size_t>(colors)) return Corrupt(path, "truncated BMP palette");
    palette.resize(3 * (1u << bpp), 0);
    for (uint32_t i = 0; i < colors; ++i) {
      palette[3 * i] = b[at + 4 * i + 2];
      palette[3 * i + 1] = b[at + 4 * i + 1];
      palette[3 * i + 2] = b[at + 4 * i];
    }
  }
  const size_t stride = ((static_cast<size_t>(width) * bpp + 31) / 32) * 4;
  if (offset > n || n - offset < stride * static_cast<size_t>(height)) {
    return Corrupt(path, "truncated BMP pixel data");
  }
  Image image = RgbImage(width, static_cast<int>(height));
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t* row = b + offset + stride * static_cast<size_t>(top_down ? y : height - 1 - y);
    uint8_t* out = image.pixels.data() + static_cast<size_t>(y) * width * 3;
    for (int32_t x = 0; x < width; ++x) {
      if (bpp >= 24) {
        const uint8_t* p = row + static_cast<size_t>(x) * (bpp / 8);
        out[3 * x] = p[2];
        out[3 * x + 1] = p[1];
        out[3 * x + 2] = p[0];
      } else {
        const size_t bit = static_cast<size_t>(x) * bpp;
        const int shift = 8 - bpp - static_cast<int>(bit % 8);
        const int index = (row[bit / 8] >> shift) & ((1 << bpp) - 1);
        std::memcpy(out + 3 * x, palette.data() + 3 * index, 3);
      }
    }
  }
  return image;
}

absl::StatusOr<Image> DecodePnm(absl::string_view bytes, absl::string_view path) {
  // Binary P5 (gray) and P6 (RGB) with maxval 255: what image folders hold in practice.
  if (bytes.size() < 2 || (bytes[1] != '5' && bytes[1] != '6')) {
    return Corrupt(path, absl::StrCat("unsupported PNM type P", bytes.substr(1, 1),
                                      " (supported: binary P5 and P6)"));
  }
  const bool rgb = bytes[1] == '6';
  size_t pos = 2;
  int64_t fields[3] = {0, 0, 0};
  for (int64_t& field : fields) {
    for (;;) {  // whitespace and # comments
      if (pos >= bytes.size()) return Corrupt(path, "truncated PNM header");
      if (bytes[pos] == '#') {
        while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
      } else if (std::isspace(static_cast<unsigned char>(bytes[pos]))) {
        ++pos;
      } else {
        break;
      }
    }
    if (!std::isdigit(static_cast<unsigned char>(bytes[pos]))) {
      return Corrupt(path, "bad PNM header");
    }
    while (pos < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[pos]))) {
      field = field * 10 + (bytes[pos++] - '0');
      if (field > (int64_t{1} << 32)) return Corrupt(path, "bad PNM header");
    }
  }
  if (pos >= bytes.size() || !std::isspace(static_cast<unsigned char>(bytes[pos]))) {
    return Corrupt(path, "bad PNM header");
  }
  ++pos;  // one whitespace byte before the samples
  const int64_t width = fields[0], height = fields[1], maxval = fields[2];
  if (absl::Status size = CheckSize(width, height, path); !size.ok()) return size;
  if (maxval != 255) {
    return Corrupt(path, absl::StrCat("unsupported PNM maxval ", maxval, " (supported: 255)"));
  }
  const size_t count = static_cast<size_t>(width) * height * (rgb ? 3 : 1);
  if (bytes.size() - pos < count) return Corrupt(path, "truncated PNM pixel data");
  Image image = RgbImage(static_cast<int>(width), static_cast<int>(height));
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data()) + pos;
  if (rgb) {
    std::memcpy(image.pixels.data(), src, count);
  } else {
    for (size_t i = 0; i < count; ++i) {
      image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = src[i];
    }
  }
  return image;
}

}  // namespace convnextv2::data::internal

namespace convnextv2::data {
namespace {

struct PngWriter {
  std::string* out;
  char message[256] = {0};
};

void OnPngWriteWarning(png_structp, png_const_charp) {}

void WritePngBytes(png_structp png, png_bytep data, png_size_t n) {
  static_cast<PngWriter*>(png_get_io_ptr(png))->out->append(reinterpret_cast<char*>(data), n);
}
void FlushPng(png_structp) {}
void OnPngWriteError(png_structp png, png_const_charp msg) {
  auto* w = static_cast<PngWriter*>(png_get_error_ptr(png));
  std::snprintf(w->message, sizeof(w->message), "%s", msg);
  longjmp(png_jmpbuf(png), 1);
}

bool WritePngRows(png_structp png, png_infop info, PngWriter* w, const Image* image,
                  png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_write_fn(png, w, WritePngBytes, FlushPng);
  png_set_IHDR(png, info, image->width, image->height, 8,
               image->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

absl::StatusOr<std::string> EncodePng(const Image& image) {
  if ((image.channels != 1 && image.channels != 3) || image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * image.channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "EncodePng: expected 1 or 3 channels of ", image.width, "x", image.height,
        " pixels, got ", image.channels, " channels and ", image.pixels.size(), " bytes"));
  }
  std::string out;
  PngWriter w{&out};
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, OnPngWriteError, OnPngWriteWarning);
  if (png == nullptr) return absl::InternalError("png_create_write_struct failed");
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows(image.height);
  for (int y = 0; y < image.height; ++y) {
    rows[y] = const_cast<png_bytep>(image.pixels.data()) +
              static_cast<size_t>(y) * image.width * image.channels;
  }
  const bool ok = info != nullptr && WritePngRows(png, info, &w, &image, rows.data());
  png_destroy_write_struct(&png, &info);
  if (!ok) return absl::InternalError(absl::StrCat("PNG encoding failed: ", w.message));
  return out;
}

}  // namespace convnextv2::data
