// safetensors: hand-made files (the spec's layout, fp16/bf16 values with known float32
// equivalents, transformers' __metadata__ and space padding), every kind of bad file, and
// every truncation and a sweep of bit flips of a good file (errors, never a crash).
#include "convnextv2/checkpoint/safetensors.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "convnextv2/util/files.h"

namespace convnextv2::checkpoint {
namespace {

using ::testing::HasSubstr;

std::string Le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string File(const std::string& header, const std::string& data) {
  return Le64(header.size()) + header + data;
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s += static_cast<char>(x);
  return s;
}

std::string Msg(const absl::StatusOr<SafetensorsFile>& r) {
  return r.ok() ? "OK" : std::string(r.status().message());
}

TEST(SafetensorsTest, ReadsHandMadeF32F16Bf16WithMetadataAndPadding) {
  float f[2] = {1.5f, -2.0f};
  std::string f32(reinterpret_cast<const char*>(f), 8);
  // fp16 1.0 = 0x3c00, -0.5 = 0xb800; bf16 3.0 = 0x4040, 0.15625 = 0x3e20 (little-endian).
  const std::string f16 = Bytes({0x00, 0x3c, 0x00, 0xb8});
  const std::string bf16 = Bytes({0x40, 0x40, 0x20, 0x3e});
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},)"
      R"("h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},)"
      R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[12,16]},)"
      R"("s":{"dtype":"F32","shape":[],"data_offsets":[16,20]},)"
      R"("e":{"dtype":"F32","shape":[0,3],"data_offsets":[20,20]}}      )";
  float scalar = 7.0f;
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(
      File(header, f32 + f16 + bf16 + std::string(reinterpret_cast<const char*>(&scalar), 4)),
      "hand.safetensors");
  ASSERT_TRUE(r.ok()) << Msg(r);
  EXPECT_EQ(r->metadata.at("format"), "pt");
  ASSERT_EQ(r->tensors.size(), 5u);
  EXPECT_TRUE(r->tensors["a"].equal(at::tensor({1.5f, -2.0f}).reshape({2, 1})));
  EXPECT_TRUE(r->tensors["h"].equal(at::tensor({1.0f, -0.5f})));
  EXPECT_TRUE(r->tensors["b"].equal(at::tensor({3.0f, 0.15625f}).reshape({1, 2})));
  EXPECT_EQ(r->tensors["s"].dim(), 0);
  EXPECT_EQ(r->tensors["s"].item<float>(), 7.0f);
  EXPECT_EQ(r->tensors["e"].sizes(), (std::vector<int64_t>{0, 3}));
  for (const auto& [name, t] : r->tensors) EXPECT_EQ(t.scalar_type(), at::kFloat) << name;
}

TEST(SafetensorsTest, WriterRoundTripsAndPadsTheHeaderTo8Bytes) {
  at::manual_seed(1);
  std::map<std::string, at::Tensor> tensors = {
      {"w", at::randn({3, 4, 1, 1})}, {"b", at::randn({5}).to(at::kHalf)}, {"z", at::zeros({0})}};
  const std::string bytes = SerializeSafetensors(tensors, {{"format", "pt"}});
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 4 * (12 + 5));
  absl::StatusOr<SafetensorsFile> r = ParseSafetensors(bytes, "x");
  ASSERT_TRUE(r.ok()) << Msg(r);
  EXPECT_TRUE(r->tensors["w"].equal(tensors["w"]));
  EXPECT_TRUE(r->tensors["b"].equal(tensors["b"].to(at::kFloat)));
  EXPECT_EQ(r->metadata.at("format"), "pt");

  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/rt.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, {}).ok());
  absl::StatusOr<SafetensorsFile> back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << Msg(back);
  EXPECT_TRUE(back->tensors["w"].equal(tensors["w"]));
  EXPECT_TRUE(back->metadata.empty());
}

TEST(SafetensorsTest, BadFilesNameTheFileAndTheTensor) {
  const std::string data(16, '\0');
  const auto parse = [&](const std::string& header, const std::string& d) {
    return Msg(ParseSafetensors(File(header, d), "bad.safetensors"));
  };
  // The header length says more than the file has.
  EXPECT_THAT(Msg(ParseSafetensors(Le64(1000) + "{}", "bad.safetensors")),
              HasSubstr("bad.safetensors: the header length says 1000 bytes, but the file has 2"));
  EXPECT_THAT(Msg(ParseSafetensors("abc", "bad.safetensors")), HasSubstr("truncated"));
  EXPECT_THAT(parse("not json", data), HasSubstr("bad.safetensors: the safetensors header is not"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data),
              HasSubstr("bad.safetensors: truncated or offsets outside the data: tensor 'w' ends "
                        "at byte 24 of the data, which has 16 bytes"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                    R"("v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                    data),
              HasSubstr("tensor 'v' (bytes 4-12) overlaps tensor 'w' (bytes 0-8)"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", data),
              HasSubstr("bad.safetensors: tensor 'w': unknown dtype 'F33'"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data),
              HasSubstr("tensor 'w': dtype I64 is not supported"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data),
              HasSubstr("tensor 'w': data_offsets [0,8] hold 8 bytes, but F32 [3] needs 12"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", data),
              HasSubstr("tensor 'w': bad shape [-1]"));
  EXPECT_THAT(parse(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", data),
              HasSubstr("tensor 'w': data_offsets must be [begin, end]"));
  EXPECT_THAT(parse(R"({"__metadata__":{"format":1}})", data),
              HasSubstr("__metadata__ entry 'format' is not a string"));
  EXPECT_THAT(Msg(ReadSafetensors("/nonexistent/x.safetensors")),
              HasSubstr("/nonexistent/x.safetensors"));
}

TEST(SafetensorsTest, EveryTruncationAndBitFlipIsAnErrorOrLoadsNeverCrashes) {
  at::manual_seed(2);
  const std::string good = SerializeSafetensors(
      {{"a.weight", at::randn({3, 5})}, {"b.bias", at::randn({7})}}, {{"format", "pt"}});
  for (size_t n = 0; n < good.size(); ++n) {
    absl::StatusOr<SafetensorsFile> r = ParseSafetensors(good.substr(0, n), "cut");
    EXPECT_FALSE(r.ok()) << "a file cut to " << n << " of " << good.size() << " bytes loaded";
  }
  int errors = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] ^= static_cast<char>(1 << (i % 8));
    absl::StatusOr<SafetensorsFile> r = ParseSafetensors(flipped, "flipped");
    if (!r.ok()) {
      ++errors;
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("flipped"));
    }
  }
  // Flips in the header's structure are caught; flips in the tensor data cannot be.
  EXPECT_GT(errors, 20);
}

}  // namespace
}  // namespace convnextv2::checkpoint
