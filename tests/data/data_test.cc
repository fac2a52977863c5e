// IDX reading (and its errors), the synthetic set, the small-image transform, the sampler and
// the loader's determinism.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "convnextv2/data/idx_dataset.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/rng.h"
#include "convnextv2/data/synthetic_dataset.h"
#include "convnextv2/data/transforms.h"

namespace convnextv2::data {
namespace {

using ::testing::HasSubstr;

std::string TmpDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string Header(int type_dims, const std::vector<int>& dims) {
  std::string h = {0, 0, 0x08, static_cast<char>(type_dims)};
  for (int d : dims) {
    h += static_cast<char>((d >> 24) & 255);
    h += static_cast<char>((d >> 16) & 255);
    h += static_cast<char>((d >> 8) & 255);
    h += static_cast<char>(d & 255);
  }
  return h;
}

void WriteGz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// 3 images of 2x3 pixels with values 10*i + p, labels 2, 0, 1.
void WriteTinyIdx(const std::string& dir, const std::string& prefix, bool gz) {
  std::string images = Header(3, {3, 2, 3});
  for (int i = 0; i < 3; ++i) {
    for (int p = 0; p < 6; ++p) images += static_cast<char>(10 * i + p);
  }
  const std::string labels = Header(1, {3}) + std::string{2, 0, 1};
  const std::string img = dir + "/" + prefix + "-images-idx3-ubyte";
  const std::string lab = dir + "/" + prefix + "-labels-idx1-ubyte";
  if (gz) {
    WriteGz(img + ".gz", images);
    WriteGz(lab + ".gz", labels);
  } else {
    std::ofstream(img, std::ios::binary) << images;
    std::ofstream(lab, std::ios::binary) << labels;
  }
}

TEST(IdxDataset, ReadsGzipAndPlain) {
  for (bool gz : {true, false}) {
    const std::string dir = TmpDir(gz ? "idx_gz" : "idx_plain");
    WriteTinyIdx(dir, "t10k", gz);
    absl::StatusOr<std::unique_ptr<IdxDataset>> ds = IdxDataset::Open(dir, Split::kEval);
    ASSERT_TRUE(ds.ok()) << ds.status();
    EXPECT_EQ((*ds)->size(), 3);
    EXPECT_EQ((*ds)->num_classes(), 3);
    absl::StatusOr<Example> ex = (*ds)->Get(1);
    ASSERT_TRUE(ex.ok());
    EXPECT_EQ(ex->label, 0);
    EXPECT_EQ(ex->image.height, 2);
    EXPECT_EQ(ex->image.width, 3);
    EXPECT_EQ(ex->image.channels, 1);
    EXPECT_EQ(ex->image.pixels, (std::vector<uint8_t>{10, 11, 12, 13, 14, 15}));
    EXPECT_FALSE((*ds)->Get(3).ok());
  }
}

// Fashion-MNIST's official names where the folder says so and there are 10 classes (what runs
// record for predict); class_<i> for other IDX sets.
TEST(IdxDataset, ClassNames) {
  const std::string plain = TmpDir("idx_names");
  WriteTinyIdx(plain, "t10k", false);
  absl::StatusOr<std::unique_ptr<IdxDataset>> ds = IdxDataset::Open(plain, Split::kEval);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->class_names(), (std::vector<std::string>{"class_0", "class_1", "class_2"}));
  const std::string fashion = TmpDir("Fashion-MNIST-tiny");
  std::string images = Header(3, {10, 1, 1}), labels = Header(1, {10});
  for (int i = 0; i < 10; ++i) {
    images += static_cast<char>(i);
    labels += static_cast<char>(9 - i);
  }
  std::ofstream(fashion + "/t10k-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(fashion + "/t10k-labels-idx1-ubyte", std::ios::binary) << labels;
  ds = IdxDataset::Open(fashion, Split::kEval);
  ASSERT_TRUE(ds.ok()) << ds.status();
  const std::vector<std::string> names = (*ds)->class_names();
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "T-shirt/top");
  EXPECT_EQ(names[7], "Sneaker");
  EXPECT_EQ(names[9], "Ankle boot");
}

TEST(IdxDataset, ErrorsNameTheFile) {
  const std::string dir = TmpDir("idx_bad");
  absl::StatusOr<std::unique_ptr<IdxDataset>> missing = IdxDataset::Open(dir, Split::kTrain);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("train-images-idx3-ubyte"));

  // Truncated image data.
  WriteTinyIdx(dir, "train", true);
  WriteGz(dir + "/train-images-idx3-ubyte.gz", Header(3, {3, 2, 3}) + "abc");
  absl::StatusOr<std::unique_ptr<IdxDataset>> truncated = IdxDataset::Open(dir, Split::kTrain);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(truncated.status().message()),
              HasSubstr(dir + "/train-images-idx3-ubyte.gz: truncated"));

  // Not an IDX file.
  WriteGz(dir + "/train-images-idx3-ubyte.gz", "<html>not found</html>");
  EXPECT_THAT(std::string(IdxDataset::Open(dir, Split::kTrain).status().message()),
              HasSubstr("not an IDX file"));

  // Images and labels disagree.
  WriteTinyIdx(dir, "train", true);
  WriteGz(dir + "/train-labels-idx1-ubyte.gz", Header(1, {2}) + std::string{0, 1});
  EXPECT_THAT(std::string(IdxDataset::Open(dir, Split::kTrain).status().message()),
              HasSubstr("has 3 images but"));
}

TEST(SyntheticDataset, DeterministicAndLabelled) {
  SyntheticDataset a(10, 4, 16, 7), b(10, 4, 16, 7), c(10, 4, 16, 8);
  EXPECT_EQ(a.Get(5)->image.pixels, b.Get(5)->image.pixels);
  EXPECT_NE(a.Get(5)->image.pixels, c.Get(5)->image.pixels);
  EXPECT_EQ(a.Get(5)->label, 1);
  EXPECT_EQ(a.Get(5)->image.pixels.size(), 16u * 16 * 3);
  EXPECT_EQ(a.class_names(), (std::vector<std::string>{"class_0", "class_1", "class_2", "class_3"}));
}

Image Gray(int h, int w, uint8_t value) {
  Image im;
  im.height = h;
  im.width = w;
  im.channels = 1;
  im.pixels.assign(static_cast<size_t>(h) * w, value);
  return im;
}

TEST(SmallImageTransform, PadsToTheCanvasAndNormalizes) {
  SmallImageTransform t({/*input_size=*/32, /*hflip=*/0.0, kImagenetMean, kImagenetStd});
  SampleRng rng(0);
  const at::Tensor out = t.Apply(Gray(28, 28, 255), rng);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 32, 32}));
  for (int c = 0; c < 3; ++c) {
    // Border (padding) is 0 before normalization; the image is 1.
    EXPECT_NEAR(out[c][0][0].item<float>(), (0 - kImagenetMean[c]) / kImagenetStd[c], 1e-5);
    EXPECT_NEAR(out[c][2][2].item<float>(), (1 - kImagenetMean[c]) / kImagenetStd[c], 1e-5);
    EXPECT_NEAR(out[c][29][29].item<float>(), (1 - kImagenetMean[c]) / kImagenetStd[c], 1e-5);
    EXPECT_NEAR(out[c][30][30].item<float>(), (0 - kImagenetMean[c]) / kImagenetStd[c], 1e-5);
  }
}

TEST(SmallImageTransform, ResizesWhenMuchLarger) {
  SmallImageTransform t({/*input_size=*/64, /*hflip=*/0.0, kInceptionMean, kInceptionStd});
  SampleRng rng(0);
  const at::Tensor out = t.Apply(Gray(28, 28, 255), rng);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 64, 64}));
  EXPECT_NEAR(out.min().item<float>(), 1.0, 1e-5);  // (1 - .5) / .5 everywhere: no border
}

TEST(SmallImageTransform, FlipMirrorsColumns) {
  Image im = Gray(28, 28, 0);
  im.pixels[0] = 255;  // top-left
  SmallImageTransform flip({32, /*hflip=*/1.0, kInceptionMean, kInceptionStd});
  SampleRng rng(0);
  const at::Tensor out = flip.Apply(im, rng);
  EXPECT_NEAR(out[0][2][29].item<float>(), 1.0, 1e-5);   // mirrored to top-right
  EXPECT_NEAR(out[0][2][2].item<float>(), -1.0, 1e-5);
}

TEST(Sampler, ShardsCoverTheDataDisjointlyWithPadding) {
  const int64_t n = 10;
  for (int world : {1, 3, 4}) {
    std::multiset<int64_t> seen;
    int64_t padded = 0;
    for (int rank = 0; rank < world; ++rank) {
      std::vector<bool> padding;
      SamplerOptions o{2, /*shuffle=*/true, false, /*seed=*/5, rank, world};
      const std::vector<int64_t> shard = ShardIndices(n, /*epoch=*/3, o, &padding);
      EXPECT_EQ(static_cast<int64_t>(shard.size()), (n + world - 1) / world);
      for (size_t i = 0; i < shard.size(); ++i) {
        if (padding[i]) {
          ++padded;
        } else {
          seen.insert(shard[i]);
        }
      }
    }
    EXPECT_EQ(padded, (n + world - 1) / world * world - n) << world;
    std::set<int64_t> unique(seen.begin(), seen.end());
    EXPECT_EQ(unique.size(), static_cast<size_t>(n)) << world;
    EXPECT_EQ(seen.size(), static_cast<size_t>(n)) << world;  // disjoint
  }
}

TEST(Sampler, ShuffleDependsOnSeedAndEpoch) {
  SamplerOptions o{1, true, false, 1, 0, 1};
  const auto e0 = ShardIndices(100, 0, o), e0b = ShardIndices(100, 0, o), e1 = ShardIndices(100, 1, o);
  EXPECT_EQ(e0, e0b);
  EXPECT_NE(e0, e1);
  o.shuffle = false;
  EXPECT_EQ(ShardIndices(5, 0, o), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(Loader, BatchesAreBitwiseIdenticalAcrossThreadCounts) {
  SyntheticDataset ds(50, 5, 32, 3);
  SmallImageTransform t({32, 0.5, kImagenetMean, kImagenetStd});
  Loader loader(&ds, &t, {16, true, true, 9, 0, 1});
  EXPECT_EQ(loader.num_batches(), 3);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const Batch one = *loader.GetBatch(2, 1);
  at::set_num_threads(2);
  const Batch two = *loader.GetBatch(2, 1);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(one.images, two.images));
  EXPECT_TRUE(at::equal(one.labels, two.labels));
  EXPECT_EQ(one.indices, two.indices);
  // Another epoch: another order.
  EXPECT_NE(loader.GetBatch(3, 1)->indices, one.indices);
  EXPECT_FALSE(loader.GetBatch(0, 3).ok());
}

TEST(Rng, UniformAndBelowInRange) {
  SampleRng rng(KeyedSeed(1, 2, 3, Purpose::kTransform));
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = rng.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    ASSERT_LT(rng.Below(7), 7u);
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.02);
  EXPECT_NE(KeyedSeed(1, 2, 3, Purpose::kTransform), KeyedSeed(1, 2, 3, Purpose::kShuffle));
  EXPECT_NE(KeyedSeed(1, 2, 3, Purpose::kTransform), KeyedSeed(1, 3, 2, Purpose::kTransform));
}

}  // namespace
}  // namespace convnextv2::data
