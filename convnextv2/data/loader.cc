#include "convnextv2/data/loader.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <glog/logging.h>

#include "absl/strings/str_cat.h"
#include "convnextv2/data/config_choices.h"
#include "convnextv2/data/rng.h"

namespace convnextv2::data {
namespace {

// A run of this many undecodable files in a row is not a stray corrupt file: fail.
constexpr int64_t kMaxReplacements = 16;

}  // namespace

// Batches are float tensors of tens of megabytes; glibc maps each from the kernel afresh, and
// first-touching those pages (~10k faults per batch) took a quarter of the loader's time here.
// Buffers of batches the caller has dropped are kept for the next ones instead.
class BatchMemory : public std::enable_shared_from_this<BatchMemory> {
 public:
  explicit BatchMemory(size_t keep) : keep_(keep) {}
  ~BatchMemory() {
    for (const auto& [n, p] : free_) std::free(p);
  }

  at::Tensor Empty(const std::vector<int64_t>& sizes) {
    int64_t n = 1;
    for (int64_t d : sizes) n *= d;
    float* data = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].first != n) continue;
        data = free_[i].second;
        free_.erase(free_.begin() + i);
        break;
      }
    }
    if (data == nullptr) {
      const size_t bytes = (std::max<int64_t>(n, 1) * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      CHECK(data != nullptr) << "out of memory for a batch of " << bytes << " bytes";
    }
    std::shared_ptr<BatchMemory> self = shared_from_this();
    return at::from_blob(
        data, sizes, [self, n](void* p) { self->Release(static_cast<float*>(p), n); },
        at::TensorOptions(at::kFloat));
  }

 private:
  void Release(float* p, int64_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() < keep_) {
        free_.emplace_back(n, p);
        return;
      }
    }
    std::free(p);
  }

  const size_t keep_;
  std::mutex mu_;
  std::vector<std::pair<int64_t, float*>> free_;
};

SamplerOptions LoaderOptions(const ExperimentConfig& config, Split split, int rank,
                             int world_size, c10::Device device) {
  const bool train = split == Split::kTrain;
  SamplerOptions o;
  o.batch_size = config.train().batch_size();
  o.shuffle = train;
  o.drop_last = train;  // the official data_loader_train; eval keeps every sample
  o.seed = static_cast<uint64_t>(config.train().seed());
  o.rank = rank;
  o.world_size = world_size;
  o.skip_corrupt =
      CorruptImagesChoices().Of(config.data().corrupt_images()) == CorruptImages::kSkip;
  o.num_workers = config.data().num_workers();
  o.prefetch_batches = config.data().prefetch_batches();
  o.pin_memory = config.data().pin_mem() && device.is_cuda();
  if (train && config.data().pin_mem() && !device.is_cuda()) {
    LOG(INFO) << "data.pin_mem: training on " << device.str()
              << ", batches stay in ordinary host memory";
  }
  return o;
}

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
    : dataset_(dataset), transform_(transform), options_(options) {
  if (options_.pin_memory) {
    pinned_ = at::hasCUDA();
    if (!pinned_) LOG(INFO) << "pin_memory: no CUDA in this process, batches are not pinned";
  }
  // Enough for the batches being filled, the caller's and one it may still hold.
  memory_ = std::make_shared<BatchMemory>(std::max(options_.prefetch_batches, 1) + 2);
}

int64_t Loader::samples_per_rank() const {
  return (dataset_->size() + options_.world_size - 1) / options_.world_size;
}

int64_t Loader::num_batches() const {
  const int64_t n = samples_per_rank(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

absl::Status Loader::LoadSample(int64_t epoch, int64_t index, float* out, int64_t* label) const {
  absl::Status status;
  for (int64_t tries = 0, source = index; tries < kMaxReplacements; ++tries) {
    // The sample's draws are keyed by its own index, also when a replacement is decoded.
    SampleRng rng(KeyedSeed(options_.seed, epoch, index, Purpose::kTransform));
    absl::StatusOr<Example> ex = dataset_->Get(source);
    status = ex.ok() ? transform_->ApplyExampleInto(*ex, rng, out) : ex.status();
    if (status.ok()) {
      *label = ex->label;
      return status;
    }
    if (!options_.skip_corrupt || status.code() != absl::StatusCode::kDataLoss) return status;
    const int64_t total = ++*skipped_;
    LOG(WARNING) << "skipping corrupt image (" << total << " so far): " << status.message();
    source = (source + 1) % dataset_->size();
  }
  return status;
}

// Workers take samples in order under one lock: a sample costs milliseconds, the lock
// microseconds. A batch is allocated when its first sample starts and handed out when its
// last one is done; samples write straight into it.
struct BatchIterator::State {
  struct Slot {
    Batch batch;
    int64_t size = 0;
    int64_t done = 0;
    std::vector<absl::Status> errors;
  };

  const Loader* loader = nullptr;
  int64_t epoch = 0;
  std::vector<int64_t> shard;
  std::vector<bool> padding;
  int64_t end_batch = 0;
  int64_t end_sample = 0;  // position in shard

  std::mutex mu;
  std::condition_variable work_cv;   // workers: more work allowed, or stop
  std::condition_variable ready_cv;  // the caller: a batch finished
  std::map<int64_t, Slot> slots;     // batches started and not yet handed out
  int64_t taken = 0;                 // index of the batch Next() returns
  int64_t next_sample = 0;           // position in shard of the next sample to start
  bool waiting = false;              // the caller is blocked in Next()
  bool stop = false;
  std::optional<absl::Status> error;
  std::vector<std::thread> workers;

  int64_t BatchSize() const { return loader->options().batch_size; }

  // Batches below this may be worked on now.
  int64_t Limit() const {
    return taken + std::max<int64_t>(loader->options().prefetch_batches, waiting ? 1 : 0);
  }

  bool CanStart() const {
    return next_sample < end_sample && next_sample / BatchSize() < Limit();
  }

  Slot& StartSlot(int64_t b) {
    auto [it, inserted] = slots.try_emplace(b);
    Slot& slot = it->second;
    if (!inserted) return slot;
    const int64_t begin = b * BatchSize();
    slot.size = std::min(BatchSize(), static_cast<int64_t>(shard.size()) - begin);
    const int64_t s = loader->transform_->output_size();
    // Pinned memory comes from CUDA's caching host allocator, which reuses its blocks itself.
    slot.batch.images = loader->pinned()
                            ? at::empty({slot.size, 3, s, s},
                                        at::TensorOptions(at::kFloat).pinned_memory(true))
                            : loader->memory_->Empty({slot.size, 3, s, s});
    slot.batch.labels = at::empty({slot.size}, at::kLong);
    slot.batch.indices.assign(shard.begin() + begin, shard.begin() + begin + slot.size);
    slot.batch.padding.assign(padding.begin() + begin, padding.begin() + begin + slot.size);
    slot.errors.resize(slot.size);
    return slot;
  }

  void Work() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      work_cv.wait(lock, [&] { return stop || next_sample >= end_sample || CanStart(); });
      if (stop || next_sample >= end_sample) return;
      const int64_t pos = next_sample++;
      const int64_t b = pos / BatchSize(), i = pos - b * BatchSize();
      Slot& slot = StartSlot(b);  // std::map: stays put while other batches come and go
      const int64_t sample_floats = slot.batch.images.numel() / slot.size;
      float* out = slot.batch.images.data_ptr<float>() + i * sample_floats;
      int64_t* label = slot.batch.labels.data_ptr<int64_t>() + i;
      const int64_t index = slot.batch.indices[i];
      lock.unlock();
      absl::Status status = loader->LoadSample(epoch, index, out, label);
      lock.lock();
      slot.errors[i] = std::move(status);
      if (++slot.done == slot.size) ready_cv.notify_all();
    }
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    work_cv.notify_all();
    for (std::thread& t : workers) t.join();
    workers.clear();
  }
};

BatchIterator::BatchIterator(std::unique_ptr<State> state) : state_(std::move(state)) {}
BatchIterator::BatchIterator(BatchIterator&&) noexcept = default;
BatchIterator& BatchIterator::operator=(BatchIterator&& other) noexcept {
  if (state_) state_->Stop();
  state_ = std::move(other.state_);
  return *this;
}

BatchIterator::~BatchIterator() {
  if (state_) state_->Stop();
}

int64_t BatchIterator::next_batch() const { return state_->taken; }

absl::StatusOr<Batch> BatchIterator::Next() {
  State& st = *state_;
  std::unique_lock<std::mutex> lock(st.mu);
  if (st.error) return *st.error;
  if (st.taken >= st.end_batch) {
    return absl::OutOfRangeError(absl::StrCat("batch ", st.taken, " is past the end of epoch ",
                                              st.epoch, " (", st.end_batch, " batches)"));
  }
  st.waiting = true;
  st.work_cv.notify_all();
  st.ready_cv.wait(lock, [&] {
    auto it = st.slots.find(st.taken);
    return it != st.slots.end() && it->second.done == it->second.size;
  });
  st.waiting = false;
  auto it = st.slots.find(st.taken);
  State::Slot slot = std::move(it->second);
  st.slots.erase(it);
  ++st.taken;
  // The first failed sample in batch order, whatever order the workers met them in.
  for (absl::Status& e : slot.errors) {
    if (e.ok()) continue;
    st.error = e;
    st.stop = true;
    lock.unlock();
    st.work_cv.notify_all();
    return e;
  }
  lock.unlock();
  st.work_cv.notify_all();
  return std::move(slot.batch);
}

BatchIterator Loader::Iterate(int64_t epoch, int64_t first_batch, int64_t end_batch) const {
  auto state = std::make_unique<BatchIterator::State>();
  BatchIterator::State& st = *state;
  st.loader = this;
  st.epoch = epoch;
  // A shuffle of a million indices costs a few milliseconds, once per iterator.
  st.shard = ShardIndices(dataset_->size(), epoch, options_, &st.padding);
  st.end_batch = end_batch < 0 ? num_batches() : std::min(end_batch, num_batches());
  st.taken = std::clamp<int64_t>(first_batch, 0, st.end_batch);
  st.next_sample = st.taken * options_.batch_size;
  st.end_sample = std::min<int64_t>(st.end_batch * options_.batch_size,
                                    static_cast<int64_t>(st.shard.size()));
  // Plain threads pulling samples: decode times vary a lot per image, and OpenMP's static split
  // and spinning barriers waste most of a busy machine's cores on that.
  const int64_t workers = std::clamp<int64_t>(
      options_.num_workers > 0 ? options_.num_workers : at::get_num_threads(), 1,
      std::max<int64_t>(st.end_sample - st.next_sample, 1));
  for (int64_t w = 0; w < workers; ++w) st.workers.emplace_back([&st] { st.Work(); });
  return BatchIterator(std::move(state));
}

absl::StatusOr<Batch> Loader::GetBatch(int64_t epoch, int64_t batch_index) const {
  if (batch_index < 0 || batch_index >= num_batches()) {
    return absl::OutOfRangeError(absl::StrCat("batch ", batch_index, " outside [0, ",
                                              num_batches(), ")"));
  }
  BatchIterator it = Iterate(epoch, batch_index, batch_index + 1);
  return it.Next();
}

}  // namespace convnextv2::data
