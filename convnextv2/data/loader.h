// Batches from a dataset: a per-rank sampler, random access to any batch of any epoch, and an
// iterator whose worker threads keep batches ready ahead of the training step.
//
//   Loader loader(dataset.get(), transform.get(),
//                 {.batch_size = 128, .shuffle = true, .drop_last = true, .seed = 0,
//                  .num_workers = 8, .prefetch_batches = 2});
//   BatchIterator batches = loader.Iterate(epoch, /*first_batch=*/resume_step);
//   for (int64_t b = resume_step; b < loader.num_batches(); ++b) {
//     absl::StatusOr<Batch> batch = batches.Next();   // batches b+1, b+2 decode meanwhile
//   }
//   absl::StatusOr<Batch> one = loader.GetBatch(epoch, 7);  // any single batch
//
// A batch is a pure function of (seed, epoch, batch index, rank, world size): the order comes
// from a shuffle seeded by (seed, epoch), each sample's augmentation from a generator seeded by
// (seed, epoch, sample index), so any number of threads and any prefetch depth give the same
// bytes, and a resumed run can start mid-epoch at the exact batch.
#ifndef CONVNEXTV2_DATA_LOADER_H_
#define CONVNEXTV2_DATA_LOADER_H_

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/proto/experiment.pb.h"

namespace convnextv2::data {

struct Batch {
  at::Tensor images;                  // float (N, 3, S, S); page-locked with pin_memory
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
  // Decode/transform threads (data.num_workers); 0: at::get_num_threads(). The batches do not
  // depend on it.
  int num_workers = 0;
  // Batches an iterator prepares ahead of the one the caller holds (data.prefetch_batches);
  // 0: a batch is only worked on while Next() waits for it. The batches do not depend on it.
  int prefetch_batches = 2;
  // Allocate batches in page-locked host memory, for asynchronous copies to a CUDA device
  // (data.pin_mem). Ignored, with a log line, when this process has no CUDA.
  bool pin_memory = false;
};

// The sampling of `config` for `split` on rank/world_size: train shuffles by train.seed and
// drops the last partial batch, eval keeps order and every sample; data.num_workers,
// data.prefetch_batches, data.corrupt_images; pinned memory when data.pin_mem and `device` is
// CUDA (a train loader logs when data.pin_mem is on but there is nothing to pin for).
SamplerOptions LoaderOptions(const ExperimentConfig& config, Split split, int rank,
                             int world_size, c10::Device device);

// DistributedSampler semantics: permutation by (seed, epoch) when shuffling, padded by repeating
// from the start to a multiple of world_size, then every world_size-th index from rank.
// Also reports which positions are padding.
std::vector<int64_t> ShardIndices(int64_t dataset_size, int64_t epoch,
                                  const SamplerOptions& options,
                                  std::vector<bool>* padding = nullptr);

class Loader;
class BatchMemory;

// The batches [first, end) of one epoch, in order. Worker threads start as it is created and
// stay at most prefetch_batches batches ahead of the caller. Destroying it mid-epoch stops the
// workers after the sample each is on (it never waits for whole batches).
class BatchIterator {
 public:
  BatchIterator(BatchIterator&&) noexcept;
  BatchIterator& operator=(BatchIterator&&) noexcept;
  ~BatchIterator();
  // The next batch. A failed sample fails its batch with the sample's error (naming the file),
  // and every later call returns that error; past the end: OutOfRange.
  absl::StatusOr<Batch> Next();
  // The index of the batch Next() returns.
  int64_t next_batch() const;

 private:
  friend class Loader;
  struct State;
  explicit BatchIterator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class Loader {
 public:
  Loader(const Dataset* dataset, const Transform* transform, SamplerOptions options);
  int64_t num_batches() const;
  // Samples this rank draws per epoch, padding included, before drop_last.
  int64_t samples_per_rank() const;
  const SamplerOptions& options() const { return options_; }
  // Batches [first_batch, end_batch) of `epoch`; end_batch < 0: to the end of the epoch.
  // The loader, dataset and transform must outlive the iterator.
  BatchIterator Iterate(int64_t epoch, int64_t first_batch = 0, int64_t end_batch = -1) const;
  // Decodes and transforms batch `batch_index` of `epoch`, samples in parallel.
  absl::StatusOr<Batch> GetBatch(int64_t epoch, int64_t batch_index) const;
  // Corrupt samples replaced so far (skip_corrupt), over all batches.
  int64_t skipped() const { return skipped_->load(); }
  // Whether batches are allocated in page-locked memory.
  bool pinned() const { return pinned_; }

 private:
  friend struct BatchIterator::State;
  // Loads sample `index` (draws keyed by it) into `out` (3 x S x S floats).
  absl::Status LoadSample(int64_t epoch, int64_t index, float* out, int64_t* label) const;

  const Dataset* dataset_;
  const Transform* transform_;
  SamplerOptions options_;
  bool pinned_ = false;
  std::shared_ptr<BatchMemory> memory_;  // reused batch buffers
  std::unique_ptr<std::atomic<int64_t>> skipped_ = std::make_unique<std::atomic<int64_t>>(0);
};

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_LOADER_H_
