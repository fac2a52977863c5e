#include "tests/data/test_images.h"

#include <turbojpeg.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace convnextv2::data::testing {

Image Gradient(int width, int height) {
  Image img;
  img.width = width;
  img.height = height;
  img.channels = 3;
  img.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &img.pixels[(static_cast<size_t>(y) * width + x) * 3];
      const bool square = x >= width / 4 && x < width / 2 && y >= height / 4 && y < height / 2;
      p[0] = static_cast<uint8_t>(255 * x / std::max(width - 1, 1));
      p[1] = static_cast<uint8_t>(255 * y / std::max(height - 1, 1));
      p[2] = square ? 250 : 40;
    }
  }
  return img;
}

std::string EncodeJpeg(const Image& image, int quality, bool cmyk, int chroma, bool progressive) {
  tjhandle tj = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  std::vector<uint8_t> src = image.pixels;
  int format = image.channels == 1 ? TJPF_GRAY : TJPF_RGB;
  int subsamp = image.channels == 1 ? TJSAMP_GRAY
                : chroma == 420       ? TJSAMP_420
                : chroma == 422       ? TJSAMP_422
                                      : TJSAMP_444;
  if (cmyk) {
    src.resize(static_cast<size_t>(image.width) * image.height * 4);
    for (size_t p = 0; p < static_cast<size_t>(image.width) * image.height; ++p) {
      for (int c = 0; c < 3; ++c) src[4 * p + c] = image.pixels[3 * p + c];
      src[4 * p + 3] = 255;
    }
    format = TJPF_CMYK;
  }
  if (tjCompress2(tj, src.data(), image.width, 0, image.height, format, &out, &size, subsamp,
                  quality, progressive ? TJFLAG_PROGRESSIVE : 0) != 0) {
    throw std::runtime_error(tjGetErrorStr2(tj));
  }
  std::string bytes(reinterpret_cast<char*>(out), size);
  tjFree(out);
  tjDestroy(tj);
  return bytes;
}

std::string EncodePng(const Image& image) {
  cv::Mat m(image.height, image.width, image.channels == 1 ? CV_8UC1 : CV_8UC3,
            const_cast<uint8_t*>(image.pixels.data()));
  cv::Mat bgr;
  if (image.channels == 3) {
    cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = m;
  }
  std::vector<uchar> buf;
  cv::imencode(".png", bgr, buf);
  return std::string(buf.begin(), buf.end());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string TmpDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace convnextv2::data::testing
