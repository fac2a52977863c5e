// Damaged image files through the data package's public API (DecodeImage, PeekImageSize,
// ReadImage, DecodeJpegCrop, ImageFolder + Loader): truncations at many offsets, random bit
// flips, a zero-byte file and headers that declare a huge image. Each must be an error naming
// the file or a well-formed image (a flipped bit in JPEG entropy data cannot be detected);
// never a crash, a hang or a huge allocation. corrupt_images=skip replaces such files.
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/image_decode.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/transforms.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/data/test_images.h"

namespace convnextv2::data {
namespace {

using ::testing::HasSubstr;
using testing::EncodeJpeg;
using testing::EncodePng;
using testing::Gradient;
using testing::TmpDir;
using testing::WriteBytes;

struct Sample {
  std::string name;
  std::string bytes;
  bool png;
};

std::vector<Sample> Samples() {
  const Image rgb = Gradient(32, 24);
  Image gray;
  gray.width = 20;
  gray.height = 16;
  gray.channels = 1;
  for (int i = 0; i < 20 * 16; ++i) gray.pixels.push_back(static_cast<uint8_t>(i * 7));
  return {{"baseline.jpg", EncodeJpeg(rgb, 90, false, 420), false},
          {"progressive.jpg", EncodeJpeg(rgb, 90, false, 444, true), false},
          {"gray.jpg", EncodeJpeg(gray, 90), false},
          {"rgb.png", EncodePng(rgb), true},
          {"gray.png", EncodePng(gray), true}};
}

// An error must name the file; an image must be well formed and not absurdly large.
void ExpectErrorOrImage(const absl::StatusOr<Image>& image, const std::string& path,
                        const std::string& what) {
  if (!image.ok()) {
    EXPECT_THAT(std::string(image.status().message()), HasSubstr(path)) << what;
    return;
  }
  ASSERT_GT(image->width, 0) << what;
  ASSERT_GT(image->height, 0) << what;
  ASSERT_LE(static_cast<int64_t>(image->width) * image->height, int64_t{1} << 22) << what;
  ASSERT_EQ(image->channels, 3) << what;
  ASSERT_EQ(image->pixels.size(), static_cast<size_t>(image->width) * image->height * 3) << what;
}

TEST(ImageFuzzTest, TheUndamagedSamplesDecode) {
  for (const Sample& s : Samples()) {
    absl::StatusOr<Image> image = DecodeImage(s.bytes, s.name);
    ASSERT_TRUE(image.ok()) << s.name << ": " << image.status();
    EXPECT_GE(image->width, 20);
  }
}

// The decoder keeps per-thread state: a corrupt file must not spoil the next, good one.
TEST(ImageFuzzTest, AFailedDecodeDoesNotSpoilTheNextOne) {
  for (const Sample& s : Samples()) {
    for (size_t cut : {s.bytes.size() / 3, s.bytes.size() / 2, size_t{30}}) {
      const std::string damaged = s.bytes.substr(0, cut);
      EXPECT_FALSE(DecodeImage(damaged, s.name).ok()) << s.name << " cut to " << cut;
      (void)PeekImageSize(damaged, s.name);
      absl::StatusOr<Image> good = DecodeImage(s.bytes, s.name);
      ASSERT_TRUE(good.ok()) << s.name << " after one cut to " << cut << ": " << good.status();
      absl::StatusOr<ImageSize> size = PeekImageSize(s.bytes, s.name);
      ASSERT_TRUE(size.ok()) << s.name << " after one cut to " << cut << ": " << size.status();
    }
  }
}

TEST(ImageFuzzTest, TruncatedFilesAreErrorsNamingTheFile) {
  int tried = 0;
  for (const Sample& s : Samples()) {
    const std::string path = "/data/train/x/" + s.name;
    const size_t size = s.bytes.size();
    for (size_t cut = 0; cut + 2 < size; cut += std::max<size_t>(1, size / 120)) {
      const std::string what = absl::StrCat(s.name, " cut to ", cut, " of ", size);
      const std::string bytes = s.bytes.substr(0, cut);
      absl::StatusOr<Image> image = DecodeImage(bytes, path);
      if (image.ok() && std::getenv("TEST_UNDECLARED_OUTPUTS_DIR") != nullptr) {
        WriteBytes(absl::StrCat(std::getenv("TEST_UNDECLARED_OUTPUTS_DIR"), "/", cut, "_", s.name),
                   bytes);
      }
      ASSERT_FALSE(image.ok()) << what << " decoded";
      EXPECT_THAT(std::string(image.status().message()), HasSubstr(path)) << what;
      absl::StatusOr<ImageSize> peek = PeekImageSize(bytes, path);
      if (!peek.ok()) {
        EXPECT_THAT(std::string(peek.status().message()), HasSubstr(path)) << what;
      }
      if (!s.png && peek.ok() && IsJpeg(bytes)) {
        // A crop whose box ends where the damage is may decode; otherwise the file is named.
        absl::StatusOr<Image> crop = DecodeJpegCrop(bytes, path, {}, 0, 0, peek->height,
                                                    peek->width);
        EXPECT_FALSE(crop.ok()) << what << " crop decoded";
      }
      ++tried;
    }
  }
  std::printf("%d truncated images refused\n", tried);
}

TEST(ImageFuzzTest, BitFlippedFilesAreErrorsNamingTheFileOrWellFormedImages) {
  std::mt19937 rng(5);
  int tried = 0, refused = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const Sample& s : Samples()) {
    const std::string path = "/data/train/x/" + s.name;
    for (int i = 0; i < 150; ++i) {
      std::string bytes = s.bytes;
      std::string where;
      const int n = std::uniform_int_distribution<int>(1, 4)(rng);
      for (int k = 0; k < n; ++k) {
        const size_t at = std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(rng);
        const int bit = std::uniform_int_distribution<int>(0, 7)(rng);
        bytes[at] = static_cast<char>(bytes[at] ^ (1 << bit));
        absl::StrAppend(&where, k ? "," : "", at, ":", bit);
      }
      const std::string what = absl::StrCat(s.name, " flipped at ", where);
      absl::StatusOr<Image> image = DecodeImage(bytes, path);
      ExpectErrorOrImage(image, path, what);
      if (s.png) {
        // PNG chunks carry CRC-32s and the pixels an Adler-32: a flip is always detected.
        EXPECT_FALSE(image.ok()) << what << " decoded silently";
      }
      refused += !image.ok();
      ++tried;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d bit-flipped images: %d refused, the rest decoded well formed (%.2f s)\n", tried,
              refused, seconds);
}

// Sets the JPEG's frame size (SOF0/SOF2) to width x height.
std::string JpegWithSize(std::string bytes, int width, int height) {
  for (size_t i = 2; i + 9 < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i + 1]);
    if (static_cast<uint8_t>(bytes[i]) == 0xFF && (b == 0xC0 || b == 0xC2)) {
      bytes[i + 5] = static_cast<char>(height >> 8);
      bytes[i + 6] = static_cast<char>(height & 0xFF);
      bytes[i + 7] = static_cast<char>(width >> 8);
      bytes[i + 8] = static_cast<char>(width & 0xFF);
      return bytes;
    }
  }
  ADD_FAILURE() << "no SOF marker";
  return bytes;
}

// Sets the PNG's IHDR width and height and fixes the chunk's CRC, so only the size is wrong.
std::string PngWithSize(std::string bytes, uint32_t width, uint32_t height) {
  auto put = [&](size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) bytes[at + k] = static_cast<char>(v >> (24 - 8 * k));
  };
  put(16, width);
  put(20, height);
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17);
  put(29, static_cast<uint32_t>(crc));
  return bytes;
}

TEST(ImageFuzzTest, HugeDeclaredSizesAreRefusedQuicklyNamingTheFile) {
  const std::vector<Sample> samples = Samples();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"huge.jpg", JpegWithSize(samples[0].bytes, 65500, 65500)},
      {"huge_progressive.jpg", JpegWithSize(samples[1].bytes, 65000, 60000)},
      {"wide.jpg", JpegWithSize(samples[0].bytes, 65535, 1)},
      {"large.jpg", JpegWithSize(samples[0].bytes, 2000, 1500)},  // under the pixel limit
      {"zero.jpg", JpegWithSize(samples[0].bytes, 0, 24)},
      {"huge.png", PngWithSize(samples[3].bytes, 100000, 100000)},
      {"huge_gray.png", PngWithSize(samples[4].bytes, 1 << 30, 1 << 30)},
      {"zero.png", PngWithSize(samples[3].bytes, 0, 24)},
  };
  for (const auto& [name, bytes] : cases) {
    const std::string path = "/data/train/x/" + name;
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<Image> image = DecodeImage(bytes, path);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_FALSE(image.ok()) << name << " decoded as " << image->width << "x" << image->height;
    EXPECT_THAT(std::string(image.status().message()), HasSubstr(path)) << name;
    EXPECT_LT(seconds, 2.0) << name;
  }
}

TEST(ImageFuzzTest, ZeroByteAndMissingFilesAreErrorsNamingTheFile) {
  const std::string dir = TmpDir("empty");
  WriteBytes(dir + "/empty.jpg", "");
  absl::StatusOr<Image> empty = ReadImage(dir + "/empty.jpg");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr(dir + "/empty.jpg"));
  absl::StatusOr<Image> missing = ReadImage(dir + "/missing.png");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir + "/missing.png"));
  EXPECT_FALSE(DecodeImage("", "x.png").ok());
  EXPECT_FALSE(PeekImageSize("", "x.png").ok());
}

// A folder with one file of each kind of damage: "fail" names the first, "skip" replaces all.
TEST(ImageFuzzTest, CorruptImagesFailNamingTheFileOrAreSkipped) {
  const std::string root = TmpDir("folder");
  const std::vector<Sample> samples = Samples();
  std::vector<std::string> bad = {
      samples[0].bytes.substr(0, samples[0].bytes.size() / 2),  // truncated JPEG
      "",                                                         // zero bytes
      JpegWithSize(samples[0].bytes, 65500, 65500),               // huge declared size
      PngWithSize(samples[3].bytes, 100000, 100000),
      samples[3].bytes.substr(0, 60),                             // truncated PNG
  };
  const char* extension[] = {".jpg", ".jpg", ".jpg", ".png", ".png"};
  for (size_t i = 0; i < bad.size(); ++i) {
    WriteBytes(absl::StrCat(root, "/a/bad_", i, extension[i]), bad[i]);
  }
  for (int i = 0; i < 6; ++i) {
    WriteBytes(absl::StrCat(root, "/b/good_", i, ".jpg"), samples[0].bytes);
  }
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EvalTransform t({.input_size = 16});
  Loader fail(ds->get(), &t, {.batch_size = 11});
  absl::StatusOr<Batch> failed = fail.GetBatch(0, 0);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr(root + "/a/bad_"));
  Loader skip(ds->get(), &t, {.batch_size = 11, .skip_corrupt = true});
  absl::StatusOr<Batch> skipped = skip.GetBatch(0, 0);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  // Each bad sample is replaced by the next readable one (trying the bad ones after it too,
  // each try counted): only class b's good files remain.
  EXPECT_EQ(skip.skipped(), 5 + 4 + 3 + 2 + 1);
  ASSERT_EQ(skipped->labels.size(0), 11);
  for (int i = 0; i < 11; ++i) EXPECT_EQ(skipped->labels[i].item<int64_t>(), 1) << i;
}

}  // namespace
}  // namespace convnextv2::data
