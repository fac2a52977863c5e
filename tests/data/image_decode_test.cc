// Decoding: JPEG (RGB, grayscale, CMYK, DCT scaling), PNG, and corrupt/truncated files.
#include "convnextv2/data/image_decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <vector>

#include "tests/data/test_images.h"

namespace convnextv2::data {
namespace {

using ::testing::HasSubstr;
using testing::EncodeJpeg;
using testing::EncodePng;
using testing::Gradient;

double MeanAbsDiff(const Image& a, const Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size() && i < b.pixels.size(); ++i) {
    sum += std::abs(static_cast<int>(a.pixels[i]) - static_cast<int>(b.pixels[i]));
  }
  return sum / std::max<size_t>(a.pixels.size(), 1);
}

TEST(DecodeTest, JpegRoundTripIsCloseAndRgb) {
  const Image src = Gradient(40, 24);
  absl::StatusOr<Image> img = DecodeImage(EncodeJpeg(src), "a.jpg");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->width, 40);
  EXPECT_EQ(img->height, 24);
  EXPECT_EQ(img->channels, 3);
  EXPECT_LT(MeanAbsDiff(*img, src), 3.0);
}

TEST(DecodeTest, PngIsExactAndBgrIsSwappedBack) {
  const Image src = Gradient(17, 9);
  absl::StatusOr<Image> img = DecodeImage(EncodePng(src), "a.png");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->pixels, src.pixels);  // lossless, channel order preserved
}

TEST(DecodeTest, GrayscalePngAndJpegBecomeRgb) {
  Image gray;
  gray.width = 5;
  gray.height = 3;
  gray.channels = 1;
  for (int i = 0; i < 15; ++i) gray.pixels.push_back(static_cast<uint8_t>(i * 17));
  absl::StatusOr<Image> png = DecodeImage(EncodePng(gray), "g.png");
  ASSERT_TRUE(png.ok()) << png.status();
  ASSERT_EQ(png->channels, 3);
  for (int i = 0; i < 15; ++i) {
    for (int c = 0; c < 3; ++c) EXPECT_EQ(png->pixels[3 * i + c], gray.pixels[i]);
  }
  absl::StatusOr<Image> jpg = DecodeImage(EncodeJpeg(gray), "g.jpg");
  ASSERT_TRUE(jpg.ok()) << jpg.status();
  ASSERT_EQ(jpg->channels, 3);
  for (int i = 0; i < 15; ++i) {
    EXPECT_EQ(jpg->pixels[3 * i], jpg->pixels[3 * i + 1]);
    EXPECT_EQ(jpg->pixels[3 * i], jpg->pixels[3 * i + 2]);
  }
}

TEST(DecodeTest, CmykJpegBecomesRgb) {
  const Image src = Gradient(16, 16);
  absl::StatusOr<Image> img = DecodeImage(EncodeJpeg(src, 100, /*cmyk=*/true), "c.jpg");
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->channels, 3);
  EXPECT_LT(MeanAbsDiff(*img, src), 4.0);  // K = 255 and inverted storage: RGB = C, M, Y
}

TEST(DecodeTest, DctScalingPicksSmallestFactorCoveringRequest) {
  const Image src = Gradient(64, 48);
  const std::string jpg = EncodeJpeg(src);
  absl::StatusOr<Image> quarter = DecodeImage(jpg, "s.jpg", {.min_width = 16, .min_height = 10});
  ASSERT_TRUE(quarter.ok());
  EXPECT_EQ(quarter->width, 16);  // 1/4
  EXPECT_EQ(quarter->height, 12);
  absl::StatusOr<Image> three_eighths =
      DecodeImage(jpg, "s.jpg", {.min_width = 17, .min_height = 10});
  ASSERT_TRUE(three_eighths.ok());
  EXPECT_EQ(three_eighths->width, 24);
  EXPECT_EQ(three_eighths->height, 18);
  absl::StatusOr<Image> full =
      DecodeImage(jpg, "s.jpg", {.min_width = 17, .min_height = 10, .dct_scaling = false});
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->width, 64);
  absl::StatusOr<Image> too_big = DecodeImage(jpg, "s.jpg", {.min_width = 100});
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ(too_big->width, 64);  // never upscaled
  absl::StatusOr<ImageSize> size = PeekImageSize(jpg, "s.jpg");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->width, 64);
  EXPECT_EQ(size->height, 48);
}

// Busy colors in every channel, so chroma upsampling at a crop's edges would show.
Image Busy(int width, int height, int channels) {
  Image img;
  img.width = width;
  img.height = height;
  img.channels = channels;
  img.pixels.resize(static_cast<size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        img.pixels[(static_cast<size_t>(y) * width + x) * channels + c] =
            static_cast<uint8_t>((x * (7 + c) + y * (13 - 3 * c) + ((x * y) % (11 + c)) * 19) & 255);
      }
    }
  }
  return img;
}

Image CropOf(const Image& img, int top, int left, int height, int width) {
  Image out;
  out.width = width;
  out.height = height;
  out.channels = img.channels;
  for (int y = top; y < top + height; ++y) {
    const uint8_t* row = img.pixels.data() + (static_cast<size_t>(y) * img.width + left) * 3;
    out.pixels.insert(out.pixels.end(), row, row + static_cast<size_t>(width) * 3);
  }
  return out;
}

TEST(DecodeTest, CropDecodesTheSamePixelsAsAFullDecode) {
  struct Case {
    int chroma, channels;
    bool progressive;
  };
  for (const Case& k : {Case{420, 3, false}, Case{422, 3, false}, Case{444, 3, false},
                        Case{420, 3, true}, Case{444, 1, false}}) {
    const std::string bytes =
        EncodeJpeg(Busy(173, 131, k.channels), 90, false, k.chroma, k.progressive);
    for (const ImageSize min : {ImageSize{0, 0}, ImageSize{150, 100}, ImageSize{90, 70},
                                ImageSize{40, 20}}) {
      const DecodeOptions o{.min_width = min.width, .min_height = min.height};
      absl::StatusOr<Image> full = DecodeImage(bytes, "b.jpg", o);
      ASSERT_TRUE(full.ok()) << full.status();
      const ImageSize scaled = ScaledJpegSize({173, 131}, o);
      ASSERT_EQ(scaled.width, full->width);
      ASSERT_EQ(scaled.height, full->height);
      const int w = full->width, h = full->height;
      std::vector<std::array<int, 4>> boxes = {
          {0, 0, h, w}, {0, 0, 1, 1}, {h - 1, w - 1, 1, 1}, {h / 3, w / 4, h / 2, w / 3},
          {1, 1, h - 2, w - 2}, {0, w / 2, h, w - w / 2}, {h / 2, 0, h - h / 2, 9}};
      for (int i = 0; i < 30; ++i) {  // assorted boxes, every alignment
        const int bw = 1 + (i * 37) % w, bh = 1 + (i * 53) % h;
        boxes.push_back({(i * 29) % (h - bh + 1), (i * 31) % (w - bw + 1), bh, bw});
      }
      for (const auto& [top, left, bh, bw] : boxes) {
        absl::StatusOr<Image> crop = DecodeJpegCrop(bytes, "b.jpg", o, top, left, bh, bw);
        ASSERT_TRUE(crop.ok()) << crop.status();
        ASSERT_EQ(crop->width, bw);
        ASSERT_EQ(crop->height, bh);
        EXPECT_EQ(crop->pixels, CropOf(*full, top, left, bh, bw).pixels)
            << "chroma " << k.chroma << " progressive " << k.progressive << " channels "
            << k.channels << " decode " << w << "x" << h << " box " << bw << "x" << bh << " at ("
            << left << ", " << top << ")";
      }
    }
  }
}

TEST(DecodeTest, CropChecksItsBoxAndStillSeesTruncation) {
  const std::string bytes = EncodeJpeg(Busy(160, 120, 3), 90, false, 420);
  EXPECT_EQ(DecodeJpegCrop(bytes, "b.jpg", {}, 100, 0, 30, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Cut in the lower half: a box at the top decodes none of the missing rows, yet fails.
  absl::StatusOr<Image> cut = DecodeJpegCrop(bytes.substr(0, bytes.size() * 3 / 4), "cut.jpg",
                                             {}, 0, 0, 10, 10);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(cut.status().message()), HasSubstr("cut.jpg"));
  // Bytes after the end marker are no truncation.
  absl::StatusOr<Image> trailer =
      DecodeJpegCrop(bytes + std::string(10000, '\0'), "t.jpg", {}, 0, 0, 10, 10);
  ASSERT_TRUE(trailer.ok()) << trailer.status();
  EXPECT_EQ(trailer->pixels, CropOf(*DecodeImage(bytes, "b.jpg"), 0, 0, 10, 10).pixels);
  // CMYK takes the full decode.
  absl::StatusOr<Image> cmyk =
      DecodeJpegCrop(EncodeJpeg(Gradient(40, 30), 95, true), "c.jpg", {}, 5, 6, 7, 8);
  ASSERT_TRUE(cmyk.ok()) << cmyk.status();
  EXPECT_EQ(cmyk->pixels,
            CropOf(*DecodeImage(EncodeJpeg(Gradient(40, 30), 95, true), "c.jpg"), 5, 6, 7, 8)
                .pixels);
}

TEST(DecodeTest, TruncatedJpegIsDataLossNamingThePath) {
  const std::string jpg = EncodeJpeg(Gradient(64, 64));
  absl::StatusOr<Image> img = DecodeImage(jpg.substr(0, jpg.size() / 2), "/data/x/broken.jpg");
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(img.status().message()), HasSubstr("/data/x/broken.jpg"));
}

TEST(DecodeTest, TruncatedPngAndGarbageAreDataLoss) {
  const std::string png = EncodePng(Gradient(32, 32));
  for (const std::string& bytes : {png.substr(0, png.size() / 2), std::string("not an image"),
                                   std::string("\xFF\xD8\xFF garbage", 12), std::string()}) {
    absl::StatusOr<Image> img = DecodeImage(bytes, "bad.png");
    ASSERT_FALSE(img.ok());
    EXPECT_EQ(img.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(img.status().message()), HasSubstr("bad.png"));
  }
}

TEST(DecodeTest, MissingFileIsNotFound) {
  absl::StatusOr<Image> img = ReadImage("/nonexistent/dir/a.jpg");
  ASSERT_FALSE(img.ok());
  EXPECT_EQ(img.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(img.status().message()), HasSubstr("/nonexistent/dir/a.jpg"));
}

}  // namespace
}  // namespace convnextv2::data
