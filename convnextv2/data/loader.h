// Batches from a dataset: a per-rank sampler and random access to any batch of any epoch.
//
//   Loader loader(dataset.get(), transform.get(),
//                 {.batch_size = 128, .shuffle = true, .drop_last = true, .seed = 0});
//   for (int64_t b = 0; b < loader.num_batches(); ++b) {
//     absl::StatusOr<Batch> batch = loader.GetBatch(epoch, b);
//   }
//
// A batch is a pure function of (seed, epoch, batch index, rank, world size): the order comes
// from a shuffle seeded by (seed, epoch), each sample's augmentation from a generator seeded by
// (seed, epoch, sample index), so any number of threads gives the same bytes and a resumed run
// can start mid-epoch at the exact batch.
#ifndef CONVNEXTV2_DATA_LOADER_H_
#define CONVNEXTV2_DATA_LOADER_H_

#include <ATen/core/Tensor.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/transforms.h"

namespace convnextv2::data {

struct Batch {
  at::Tensor images;                  // float (N, 3, S, S)
  at::Tensor labels;                  // int64 (N)
  std::vector<int64_t> indices;       // dataset index of each sample
  std::vector<bool> padding;          // true for samples repeated to even out ranks
};

struct SamplerOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  // data.corrupt_images "skip": a sample whose file cannot be decoded (DataLoss) is replaced by
  // the next readable index, counted and logged; false: the batch fails with the file's path.
  bool skip_corrupt = false;
  // Decode/transform threads per batch (data.num_workers); 0: at::get_num_threads(). The
  // batch does not depend on it.
  int num_workers = 0;
};

// DistributedSampler semantics: permutation by (seed, epoch) when shuffling, padded by repeating
// from the start to a multiple of world_size, then every world_size-th index from rank.
// Also reports which positions are padding.
std::vector<int64_t> ShardIndices(int64_t dataset_size, int64_t epoch,
                                  const SamplerOptions& options,
                                  std::vector<bool>* padding = nullptr);

class Loader {
 public:
  Loader(const Dataset* dataset, const Transform* transform, SamplerOptions options);
  int64_t num_batches() const;
  // Samples this rank draws per epoch, padding included, before drop_last.
  int64_t samples_per_rank() const;
  const SamplerOptions& options() const { return options_; }
  // Decodes and transforms batch `batch_index` of `epoch`, samples in parallel.
  absl::StatusOr<Batch> GetBatch(int64_t epoch, int64_t batch_index) const;
  // Corrupt samples replaced so far (skip_corrupt), over all batches.
  int64_t skipped() const { return skipped_->load(); }

 private:
  const Dataset* dataset_;
  const Transform* transform_;
  SamplerOptions options_;
  std::unique_ptr<std::atomic<int64_t>> skipped_ = std::make_unique<std::atomic<int64_t>>(0);
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_LOADER_H_
