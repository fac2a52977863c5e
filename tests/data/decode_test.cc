// Decoding: JPEG (RGB, grayscale, CMYK, DCT scaling), PNG, and corrupt/truncated files.
#include "convnextv2/data/decode.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

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
