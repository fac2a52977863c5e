// The non-JPEG decoders (non_jpeg_codecs.h) against the decoder they replace, OpenCV's
// cv::imdecode(IMREAD_COLOR), on images OpenCV encodes in each format and variant: the pixels
// must be identical.
#include "convnextv2/data/non_jpeg_codecs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <string>
#include <vector>

#include "convnextv2/data/image_decode.h"

namespace convnextv2::data {
namespace {

using ::testing::HasSubstr;

// A deterministic image with gradients, edges and every channel different.
cv::Mat Pattern(int width, int height, int type) {
  cv::Mat m(height, width, type);
  const int channels = m.channels();
  const bool wide = m.depth() == CV_16U;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        const int v = (x * 37 + y * 91 + c * 53 + (x * y) % 17) % 256;
        if (wide) {
          m.ptr<uint16_t>(y)[x * channels + c] = static_cast<uint16_t>(v * 257 + (x * 13) % 251);
        } else {
          m.ptr<uint8_t>(y)[x * channels + c] = static_cast<uint8_t>(v);
        }
      }
    }
  }
  return m;
}

std::string Encode(const cv::Mat& m, const std::string& ext, std::vector<int> params = {}) {
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, m, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

// What the previous decoder gave: imdecode(IMREAD_COLOR) then BGR -> RGB.
std::vector<uint8_t> OpenCvPixels(const std::string& bytes) {
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1,
                    const_cast<char*>(bytes.data()));
  const cv::Mat bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty());
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return std::vector<uint8_t>(rgb.data, rgb.data + rgb.total() * 3);
}

struct Case {
  std::string name;
  int type;
  std::string ext;
  std::vector<int> params;
};

class CodecsTest : public ::testing::TestWithParam<Case> {};

TEST_P(CodecsTest, SamePixelsAsOpenCv) {
  const Case& c = GetParam();
  // 19 x 11: odd sizes (BMP row padding, chroma subsampling edges).
  const std::string bytes = Encode(Pattern(19, 11, c.type), c.ext, c.params);
  absl::StatusOr<Image> image = DecodeImage(bytes, "x" + c.ext);
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->width, 19);
  EXPECT_EQ(image->height, 11);
  EXPECT_EQ(image->channels, 3);
  EXPECT_EQ(image->pixels, OpenCvPixels(bytes));
  absl::StatusOr<ImageSize> size = PeekImageSize(bytes, "x" + c.ext);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(size->width, 19);
  EXPECT_EQ(size->height, 11);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, CodecsTest,
    ::testing::Values(
        Case{"png_rgb", CV_8UC3, ".png", {}}, Case{"png_gray", CV_8UC1, ".png", {}},
        Case{"png_rgba", CV_8UC4, ".png", {}}, Case{"png_rgb16", CV_16UC3, ".png", {}},
        Case{"png_gray16", CV_16UC1, ".png", {}},
        Case{"png_bilevel", CV_8UC1, ".png", {cv::IMWRITE_PNG_BILEVEL, 1}},
        Case{"webp_lossy", CV_8UC3, ".webp", {cv::IMWRITE_WEBP_QUALITY, 80}},
        Case{"webp_lossless", CV_8UC3, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}},
        Case{"webp_alpha", CV_8UC4, ".webp", {cv::IMWRITE_WEBP_QUALITY, 101}},
        Case{"tiff_rgb", CV_8UC3, ".tiff", {}}, Case{"tiff_gray", CV_8UC1, ".tiff", {}},
        Case{"tiff_rgba", CV_8UC4, ".tiff", {}}, Case{"tiff_rgb16", CV_16UC3, ".tiff", {}},
        Case{"bmp_rgb", CV_8UC3, ".bmp", {}}, Case{"bmp_gray", CV_8UC1, ".bmp", {}},
        Case{"bmp_rgba", CV_8UC4, ".bmp", {}}, Case{"ppm", CV_8UC3, ".ppm", {}},
        Case{"pgm", CV_8UC1, ".pgm", {}}),
    [](const auto& info) { return info.param.name; });

TEST(CodecsTest, EncodePngRoundTrips) {
  Image rgb;
  rgb.width = 7;
  rgb.height = 5;
  rgb.channels = 3;
  for (int i = 0; i < 7 * 5 * 3; ++i) rgb.pixels.push_back(static_cast<uint8_t>(i * 7));
  absl::StatusOr<std::string> png = EncodePng(rgb);
  ASSERT_TRUE(png.ok()) << png.status();
  absl::StatusOr<Image> back = DecodeImage(*png, "r.png");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, rgb.pixels);
  EXPECT_EQ(OpenCvPixels(*png), rgb.pixels);
  rgb.pixels.pop_back();
  EXPECT_EQ(EncodePng(rgb).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CodecsTest, TruncatedFilesAreDataLossNamingThePath) {
  for (const auto& [ext, type] : std::vector<std::pair<std::string, int>>{
           {".png", CV_8UC3}, {".webp", CV_8UC3}, {".tiff", CV_8UC3}, {".bmp", CV_8UC3},
           {".ppm", CV_8UC3}}) {
    const std::string bytes = Encode(Pattern(32, 32, type), ext);
    absl::StatusOr<Image> image = DecodeImage(bytes.substr(0, bytes.size() / 2), "cut" + ext);
    ASSERT_FALSE(image.ok()) << ext;
    EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << ext;
    EXPECT_THAT(std::string(image.status().message()), HasSubstr("cut" + ext));
  }
}

TEST(CodecsTest, SniffsFormatsFromMagicNumbers) {
  using internal::ImageFormat;
  using internal::SniffFormat;
  EXPECT_EQ(SniffFormat(Encode(Pattern(4, 4, CV_8UC3), ".png")), ImageFormat::kPng);
  EXPECT_EQ(SniffFormat(Encode(Pattern(4, 4, CV_8UC3), ".webp")), ImageFormat::kWebp);
  EXPECT_EQ(SniffFormat(Encode(Pattern(4, 4, CV_8UC3), ".tiff")), ImageFormat::kTiff);
  EXPECT_EQ(SniffFormat(Encode(Pattern(4, 4, CV_8UC3), ".bmp")), ImageFormat::kBmp);
  EXPECT_EQ(SniffFormat(Encode(Pattern(4, 4, CV_8UC3), ".ppm")), ImageFormat::kPnm);
  EXPECT_EQ(SniffFormat(Encode(Pattern(4, 4, CV_8UC3), ".jpg")), ImageFormat::kJpeg);
  EXPECT_EQ(SniffFormat("GIF89a"), ImageFormat::kUnknown);
}

}  // namespace
}  // namespace convnextv2::data
