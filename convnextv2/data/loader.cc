#include "convnextv2/data/loader.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <thread>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/rng.h"

namespace convnextv2::data {
namespace {

// A run of this many undecodable files in a row is not a stray corrupt file: fail.
constexpr int64_t kMaxReplacements = 16;

}  // namespace

std::vector<int64_t> ShardIndices(int64_t dataset_size, int64_t epoch,
                                  const SamplerOptions& options, std::vector<bool>* padding) {
  std::vector<int64_t> order(dataset_size);
  std::iota(order.begin(), order.end(), 0);
  if (options.shuffle) {
    SampleRng rng(KeyedSeed(options.seed, epoch, 0, Purpose::kShuffle));
    for (int64_t i = dataset_size - 1; i > 0; --i) {
      std::swap(order[i], order[rng.Below(static_cast<uint64_t>(i) + 1)]);
    }
  }
  const int64_t world = options.world_size;
  const int64_t total = (dataset_size + world - 1) / world * world;
  std::vector<int64_t> shard;
  if (padding != nullptr) padding->clear();
  for (int64_t pos = options.rank; pos < total; pos += world) {
    shard.push_back(order[pos % dataset_size]);
    if (padding != nullptr) padding->push_back(pos >= dataset_size);
  }
  return shard;
}

Loader::Loader(const Dataset* dataset, const Transform* transform, SamplerOptions options)
    : dataset_(dataset), transform_(transform), options_(options) {}

int64_t Loader::samples_per_rank() const {
  return (dataset_->size() + options_.world_size - 1) / options_.world_size;
}

int64_t Loader::num_batches() const {
  const int64_t n = samples_per_rank(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

absl::StatusOr<Batch> Loader::GetBatch(int64_t epoch, int64_t batch_index) const {
  if (batch_index < 0 || batch_index >= num_batches()) {
    return absl::OutOfRangeError(absl::StrCat("batch ", batch_index, " outside [0, ",
                                              num_batches(), ")"));
  }
  std::vector<bool> padding;
  // The shard is recomputed per batch: a shuffle of 60k indices costs well under a millisecond.
  const std::vector<int64_t> shard = ShardIndices(dataset_->size(), epoch, options_, &padding);
  const int64_t begin = batch_index * options_.batch_size;
  const int64_t n = std::min<int64_t>(options_.batch_size, static_cast<int64_t>(shard.size()) - begin);
  const int s = transform_->output_size();
  Batch batch;
  batch.images = at::empty({n, 3, s, s});
  batch.labels = at::empty({n}, at::kLong);
  batch.indices.assign(shard.begin() + begin, shard.begin() + begin + n);
  batch.padding.assign(padding.begin() + begin, padding.begin() + begin + n);
  std::vector<absl::Status> errors(n);
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  // Plain threads pulling sample indices: decode times vary a lot per image, and OpenMP's
  // static split and spinning barriers waste most of a busy machine's cores on that.
  const int64_t sample_bytes = static_cast<int64_t>(3) * s * s * sizeof(float);
  char* images = static_cast<char*>(batch.images.data_ptr());
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t i; (i = next++) < n;) {
      // The sample's draws are keyed by its own index, also when a replacement is decoded.
      absl::StatusOr<at::Tensor> x;
      int64_t label = 0;
      for (int64_t tries = 0, index = batch.indices[i]; tries < kMaxReplacements; ++tries) {
        SampleRng rng(KeyedSeed(options_.seed, epoch, batch.indices[i], Purpose::kTransform));
        absl::StatusOr<Example> ex = dataset_->Get(index);
        x = ex.ok() ? transform_->ApplyExample(*ex, rng) : absl::StatusOr<at::Tensor>(ex.status());
        if (x.ok()) {
          label = ex->label;
          break;
        }
        if (!options_.skip_corrupt || x.status().code() != absl::StatusCode::kDataLoss) break;
        const int64_t total = ++*skipped_;
        LOG(WARNING) << "skipping corrupt image (" << total << " so far): " << x.status().message();
        index = (index + 1) % dataset_->size();
      }
      if (!x.ok()) {
        errors[i] = x.status();
        continue;
      }
      // memcpy, not copy_: ATen ops from these threads could start an OpenMP team per thread.
      const at::Tensor sample = x->contiguous();
      std::memcpy(images + i * sample_bytes, sample.data_ptr(), sample_bytes);
      labels[i] = label;
    }
  };
  const int64_t workers =
      std::clamp<int64_t>(options_.num_workers > 0 ? options_.num_workers : at::get_num_threads(),
                          1, n);
  std::vector<std::thread> pool;
  for (int64_t w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  for (const absl::Status& e : errors) {
    if (!e.ok()) return e;
  }
  return batch;
}

}  // namespace convnextv2::data
