// The loader's prefetching iterator: the same bytes for any thread count and prefetch depth,
// a bounded number of batches ahead, errors that name the file, shutdown mid-epoch, pinned
// memory as a no-op without CUDA, and the options taken from a config.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/rand_augment.h"
#include "convnextv2/data/synthetic_dataset.h"
#include "convnextv2/data/transforms.h"
#include "tests/data/test_images.h"

namespace convnextv2::data {
namespace {

using ::testing::HasSubstr;

// Synthetic images that count the samples read, can fail one index as a corrupt file would and
// can take a while per sample.
class CountingDataset : public Dataset {
 public:
  CountingDataset(int64_t size, int64_t bad_index = -1, int sleep_ms = 0)
      : inner_(size, 4, 32, 1), bad_index_(bad_index), sleep_ms_(sleep_ms) {}
  int64_t size() const override { return inner_.size(); }
  int num_classes() const override { return inner_.num_classes(); }
  absl::StatusOr<Example> Get(int64_t index) const override {
    ++reads_;
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (index == bad_index_) {
      return absl::DataLossError("cannot decode image '/data/bad/" + std::to_string(index) +
                                 ".jpg': premature end of data");
    }
    return inner_.Get(index);
  }
  std::string Describe() const override { return "counting"; }
  int64_t reads() const { return reads_.load(); }

 private:
  SyntheticDataset inner_;
  int64_t bad_index_;
  int sleep_ms_;
  mutable std::atomic<int64_t> reads_{0};
};

// Waits up to 20 s for `done`; returns whether it happened.
template <typename F>
bool Eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void ExpectSameBatch(const Batch& a, const Batch& b, const std::string& what) {
  EXPECT_TRUE(a.images.equal(b.images)) << what;
  EXPECT_TRUE(a.labels.equal(b.labels)) << what;
  EXPECT_EQ(a.indices, b.indices) << what;
  EXPECT_EQ(a.padding, b.padding) << what;
}

TEST(BatchIteratorTest, SameBytesForAnyThreadCountAndPrefetchDepth) {
  // JPEGs through the whole train pipeline (DCT scaling, crop, flip, RandAugment, erasing).
  const std::string root = testing::TmpDir("iter");
  for (int i = 0; i < 11; ++i) {
    testing::WriteBytes(root + "/c" + std::to_string(i % 3) + "/" + std::to_string(i) + ".jpg",
                        testing::EncodeJpeg(testing::Gradient(90 + 7 * i, 70 + 5 * i), 90));
  }
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  ASSERT_TRUE(ds.ok()) << ds.status();
  TrainTransform::Options o;
  o.input_size = 40;
  o.rand_augment = *RandAugment::Parse("rand-m9-mstd0.5-inc1", {});
  o.erase = {.probability = 0.5, .mode = EraseMode::kPixel, .max_count = 1};
  TrainTransform t(o);
  // 11 images, world 2, rank 1: 6 samples (one padding), batches of 4: the last one partial.
  SamplerOptions base{.batch_size = 4, .shuffle = true, .drop_last = false, .seed = 7,
                      .rank = 1, .world_size = 2, .num_workers = 1, .prefetch_batches = 0};
  const Loader reference(ds->get(), &t, base);
  ASSERT_EQ(reference.num_batches(), 2);
  std::vector<Batch> expected;
  for (int64_t b = 0; b < 2; ++b) expected.push_back(*reference.GetBatch(3, b));
  EXPECT_EQ(expected[1].images.size(0), 2);
  EXPECT_TRUE(expected[1].padding[1]);
  for (int threads : {1, 2, 5}) {
    for (int prefetch : {0, 1, 3}) {
      SamplerOptions so = base;
      so.num_workers = threads;
      so.prefetch_batches = prefetch;
      const Loader loader(ds->get(), &t, so);
      const std::string what =
          "threads " + std::to_string(threads) + " prefetch " + std::to_string(prefetch);
      BatchIterator it = loader.Iterate(3);
      for (int64_t b = 0; b < 2; ++b) {
        EXPECT_EQ(it.next_batch(), b);
        absl::StatusOr<Batch> batch = it.Next();
        ASSERT_TRUE(batch.ok()) << batch.status();
        ExpectSameBatch(*batch, expected[b], what + " batch " + std::to_string(b));
      }
      absl::StatusOr<Batch> past = it.Next();
      EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange) << what;
      // Resuming mid-epoch gives the same batch as the uninterrupted epoch.
      BatchIterator resumed = loader.Iterate(3, /*first_batch=*/1);
      ExpectSameBatch(*resumed.Next(), expected[1], what + " resumed");
    }
  }
  // Another epoch: other batches.
  EXPECT_FALSE(reference.GetBatch(4, 0)->images.equal(expected[0].images));
}

TEST(BatchIteratorTest, StaysAtMostPrefetchBatchesAhead) {
  for (int prefetch : {0, 1, 3}) {
    CountingDataset ds(64);
    SmallImageTransform t({});
    const Loader loader(&ds, &t, {.batch_size = 4, .num_workers = 3,
                                  .prefetch_batches = prefetch});
    BatchIterator it = loader.Iterate(0);
    ASSERT_TRUE(it.Next().ok());
    // The caller holds batch 0: batches 1..prefetch get decoded in the background, no more.
    const int64_t bound = 4 * (1 + prefetch);
    EXPECT_TRUE(Eventually([&] { return ds.reads() >= bound; })) << prefetch;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(ds.reads(), bound) << prefetch;
    ASSERT_TRUE(it.Next().ok());
    EXPECT_TRUE(Eventually([&] { return ds.reads() >= bound + 4; })) << prefetch;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(ds.reads(), bound + 4) << prefetch;
  }
}

TEST(BatchIteratorTest, AFailedSampleFailsItsBatchWithThePath) {
  CountingDataset ds(20, /*bad_index=*/6);
  SmallImageTransform t({});
  const Loader loader(&ds, &t, {.batch_size = 4, .num_workers = 2, .prefetch_batches = 3});
  BatchIterator it = loader.Iterate(0);
  // Batch 0 is fine although batch 1 fails while it is being prefetched.
  ASSERT_TRUE(it.Next().ok());
  absl::StatusOr<Batch> bad = it.Next();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("/data/bad/6.jpg"));
  // The error stays; the iterator does not go on past it.
  absl::StatusOr<Batch> again = it.Next();
  EXPECT_EQ(again.status(), bad.status());
  // skip_corrupt replaces it instead.
  SamplerOptions skip = loader.options();
  skip.skip_corrupt = true;
  const Loader skipping(&ds, &t, skip);
  BatchIterator ok = skipping.Iterate(0);
  for (int b = 0; b < 5; ++b) ASSERT_TRUE(ok.Next().ok()) << b;
  EXPECT_EQ(skipping.skipped(), 1);
}

TEST(BatchIteratorTest, DestroyingItMidEpochReturnsPromptly) {
  // 200 samples of 20 ms each would take seconds; destruction waits only for the samples the
  // workers are on.
  CountingDataset ds(200, -1, /*sleep_ms=*/20);
  SmallImageTransform t({});
  const Loader loader(&ds, &t, {.batch_size = 50, .num_workers = 2, .prefetch_batches = 3});
  {
    BatchIterator it = loader.Iterate(0);
    EXPECT_TRUE(Eventually([&] { return ds.reads() >= 3; }));
  }
  const int64_t reads = ds.reads();
  EXPECT_LT(reads, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(ds.reads(), reads);  // nothing runs on after destruction
  // An iterator that is never asked and one moved from are destroyed cleanly too.
  BatchIterator a = loader.Iterate(0, 3);
  BatchIterator b = std::move(a);
  a = loader.Iterate(0, 2);
}

TEST(LoaderTest, HeldBatchesKeepTheirBytesWhileMemoryIsReused) {
  SyntheticDataset ds(40, 4, 32, 2);
  SmallImageTransform t({.input_size = 32, .hflip = 0.5});
  std::vector<Batch> held;
  std::vector<Batch> expected;
  {
    const Loader loader(&ds, &t, {.batch_size = 4, .shuffle = true, .num_workers = 2,
                                  .prefetch_batches = 1});
    for (int64_t b = 0; b < loader.num_batches(); ++b) {
      expected.push_back(*loader.GetBatch(1, b));
      expected.back().images = expected.back().images.clone();
    }
    for (int round = 0; round < 3; ++round) {  // dropped batches' buffers come back
      BatchIterator it = loader.Iterate(1);
      for (int64_t b = 0; b < loader.num_batches(); ++b) {
        absl::StatusOr<Batch> batch = it.Next();
        ASSERT_TRUE(batch.ok());
        if (round == 2 && b % 3 == 0) held.push_back(*batch);  // kept across later batches
        ExpectSameBatch(*batch, expected[b], "round " + std::to_string(round));
      }
    }
  }
  // The loader is gone; the batches still held are intact.
  for (const Batch& batch : held) {
    int64_t b = -1;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (expected[i].indices == batch.indices) b = static_cast<int64_t>(i);
    }
    ASSERT_GE(b, 0);
    ExpectSameBatch(batch, expected[b], "held");
  }
}

TEST(LoaderTest, PinMemoryWithoutCudaIsANoOp) {
  SyntheticDataset ds(8, 2, 32, 1);
  SmallImageTransform t({});
  const Loader loader(&ds, &t, {.batch_size = 4, .pin_memory = true});
  EXPECT_EQ(loader.pinned(), at::hasCUDA());
  absl::StatusOr<Batch> batch = loader.GetBatch(0, 0);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->images.is_pinned(), at::hasCUDA());
  const Loader plain(&ds, &t, {.batch_size = 4});
  EXPECT_TRUE(plain.GetBatch(0, 0)->images.equal(batch->images));
}

TEST(LoaderTest, OptionsFromTheConfig) {
  ExperimentConfig c;
  c.mutable_train()->set_batch_size(32);
  c.mutable_train()->set_seed(5);
  c.mutable_data()->set_num_workers(3);
  c.mutable_data()->set_prefetch_batches(4);
  c.mutable_data()->set_corrupt_images("skip");
  const SamplerOptions train = LoaderOptions(c, Split::kTrain, 1, 2, c10::Device("cpu"));
  EXPECT_EQ(train.batch_size, 32);
  EXPECT_TRUE(train.shuffle);
  EXPECT_TRUE(train.drop_last);
  EXPECT_EQ(train.seed, 5u);
  EXPECT_EQ(train.rank, 1);
  EXPECT_EQ(train.world_size, 2);
  EXPECT_EQ(train.num_workers, 3);
  EXPECT_EQ(train.prefetch_batches, 4);
  EXPECT_TRUE(train.skip_corrupt);
  EXPECT_FALSE(train.pin_memory);  // pin_mem is on by default, but the device is the CPU
  const SamplerOptions eval = LoaderOptions(c, Split::kEval, 1, 2, c10::Device("cpu"));
  EXPECT_FALSE(eval.shuffle);
  EXPECT_FALSE(eval.drop_last);
  EXPECT_TRUE(LoaderOptions(c, Split::kTrain, 0, 1, c10::Device("cuda:0")).pin_memory);
  c.mutable_data()->set_pin_mem(false);
  EXPECT_FALSE(LoaderOptions(c, Split::kTrain, 0, 1, c10::Device("cuda:0")).pin_memory);
  // The defaults: two batches ahead.
  EXPECT_EQ(LoaderOptions(ExperimentConfig(), Split::kTrain, 0, 1, c10::Device("cpu"))
                .prefetch_batches, 2);
}

}  // namespace
}  // namespace convnextv2::data
