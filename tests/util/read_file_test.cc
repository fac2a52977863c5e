// util::ReadFile: exact bytes of regular files of any size (NULs included), files whose size
// fstat does not know (/proc), and errors that name the path and the reason.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "convnextv2/util/files.h"

namespace convnextv2::util {
namespace {

std::string TmpPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(ReadFile, ReturnsTheExactBytes) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{100003}}) {
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 256);
    const std::string path = TmpPath("f" + std::to_string(size));
    Write(path, bytes);
    absl::StatusOr<std::string> got = ReadFile(path);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, bytes) << size;
  }
}

TEST(ReadFile, ReadsFilesOfUnknownSize) {
  // /proc files report size 0 to fstat and still have content.
  absl::StatusOr<std::string> got = ReadFile("/proc/self/status");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NE(got->find("Name:"), std::string::npos);
}

TEST(ReadFile, ErrorsNameThePathAndTheReason) {
  const std::string missing = TmpPath("none.jpg");
  absl::StatusOr<std::string> got = ReadFile(missing);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "cannot read " + missing + ": no such file");

  const std::string dir = TmpPath("a_dir");
  std::filesystem::create_directories(dir);
  got = ReadFile(dir);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), "cannot read " + dir + ": a directory");
}

}  // namespace
}  // namespace convnextv2::util
