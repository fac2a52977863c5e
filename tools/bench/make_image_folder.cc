// Writes a deterministic ImageFolder of ImageNet-like JPEGs for benchmarks and tests:
// <out>/<split>/class_NNN/img_NNNNN.jpg, smooth color fields with ellipses, edges and grain
// (so JPEG sizes and decode costs resemble photos), quality 90, 4:2:0 like most of ImageNet.
//
//   bazel run //tools/bench:make_image_folder -- --out=/tmp/fake_imnet --images=2000
//       --classes=10 --width=500 --height=375 --splits=train,val    (one command line)
//
// The same flags give the same bytes: every image is a pure function of (seed, split, index).
#include <gflags/gflags.h>
#include <turbojpeg.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "convnextv2/data/rng.h"

DEFINE_string(out, "", "output folder (created)");
DEFINE_int32(images, 1000, "images per split");
DEFINE_int32(classes, 10, "class folders per split");
DEFINE_int32(width, 500, "image width");
DEFINE_int32(height, 375, "image height");
DEFINE_int32(quality, 90, "JPEG quality");
DEFINE_string(splits, "train,val", "comma-separated split folders; empty for a flat folder");
DEFINE_uint64(seed, 0, "seed");

namespace {

using convnextv2::data::KeyedSeed;
using convnextv2::data::Purpose;
using convnextv2::data::SampleRng;

cv::Mat MakeImage(SampleRng& rng, int w, int h) {
  // Low-frequency color field: a few random cosines per channel.
  cv::Mat img(h, w, CV_8UC3);
  double fx[3][3], fy[3][3], ph[3][3], amp[3][3], base[3];
  for (int c = 0; c < 3; ++c) {
    base[c] = rng.Uniform(60, 190);
    for (int k = 0; k < 3; ++k) {
      fx[c][k] = rng.Uniform(0.002, 0.03);
      fy[c][k] = rng.Uniform(0.002, 0.03);
      ph[c][k] = rng.Uniform(0, 6.28);
      amp[c][k] = rng.Uniform(10, 40);
    }
  }
  for (int y = 0; y < h; ++y) {
    auto* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        double v = base[c];
        for (int k = 0; k < 3; ++k) v += amp[c][k] * std::cos(fx[c][k] * x + fy[c][k] * y + ph[c][k]);
        row[x][c] = cv::saturate_cast<uchar>(v);
      }
    }
  }
  // Objects with edges.
  const int shapes = 4 + static_cast<int>(rng.Below(8));
  for (int s = 0; s < shapes; ++s) {
    const cv::Scalar color(rng.Below(256), rng.Below(256), rng.Below(256));
    const cv::Point center(rng.Below(w), rng.Below(h));
    if (rng.Bernoulli(0.5)) {
      cv::ellipse(img, center, cv::Size(10 + rng.Below(w / 4), 10 + rng.Below(h / 4)),
                  rng.Uniform(0, 180), 0, 360, color, -1, cv::LINE_AA);
    } else {
      cv::line(img, center, cv::Point(rng.Below(w), rng.Below(h)), color,
               1 + static_cast<int>(rng.Below(6)), cv::LINE_AA);
    }
  }
  cv::GaussianBlur(img, img, cv::Size(3, 3), 0.8);
  // Sensor-like grain.
  for (int y = 0; y < h; ++y) {
    auto* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < w; ++x) {
      const int n = static_cast<int>(rng.Below(9)) - 4;
      for (int c = 0; c < 3; ++c) row[x][c] = cv::saturate_cast<uchar>(row[x][c] + n);
    }
  }
  return img;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("writes a deterministic folder of ImageNet-like JPEGs");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_out.empty() || FLAGS_images <= 0 || FLAGS_classes <= 0) {
    std::fprintf(stderr, "need --out, --images > 0, --classes > 0\n");
    return 2;
  }
  std::vector<std::string> splits = absl::StrSplit(FLAGS_splits, ',', absl::SkipEmpty());
  if (splits.empty()) splits.push_back("");
  tjhandle tj = tjInitCompress();
  for (size_t si = 0; si < splits.size(); ++si) {
    for (int i = 0; i < FLAGS_images; ++i) {
      SampleRng rng(KeyedSeed(FLAGS_seed, si, i, Purpose::kSynthetic));
      cv::Mat img = MakeImage(rng, FLAGS_width, FLAGS_height);
      const std::filesystem::path dir = std::filesystem::path(FLAGS_out) / splits[si] /
                                        absl::StrFormat("class_%03d", i % FLAGS_classes);
      std::filesystem::create_directories(dir);
      unsigned char* buf = nullptr;
      unsigned long size = 0;
      if (tjCompress2(tj, img.data, img.cols, 0, img.rows, TJPF_BGR, &buf, &size, TJSAMP_420,
                      FLAGS_quality, 0) != 0) {
        std::fprintf(stderr, "JPEG encoding failed: %s\n", tjGetErrorStr2(tj));
        return 1;
      }
      std::ofstream(dir / absl::StrFormat("img_%05d.jpg", i), std::ios::binary)
          .write(reinterpret_cast<const char*>(buf), static_cast<std::streamsize>(size));
      tjFree(buf);
    }
  }
  tjDestroy(tj);
  std::printf("wrote %d images x %zu splits to %s\n", FLAGS_images, splits.size(),
              FLAGS_out.c_str());
  return 0;
}
