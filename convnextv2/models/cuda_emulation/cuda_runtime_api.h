// A CPU stand-in for the CUDA runtime facilities that grn_cuda.cu uses, so that a test can run
// its kernels, unchanged, on a machine without a GPU (//tests/models:grn_cuda_emulated_test).
// This folder is on the include path of the testonly :grn_cuda_emulated library and its
// dependents only, where it takes the place of the CUDA toolkit's headers of the same names
// (cuda_fp16.h and cuda_bf16.h are beside this one); never part of a binary.
//
// How a launch runs: blockDim real threads (std::thread) run the grid's blocks one after
// another, meeting at a barrier (spinning with yields) in __syncthreads and after each block.
// Since one block runs at a time, a `__shared__` variable (a function-local static here) is
// that block's shared memory. A warp shuffle exchanges values through block memory between two
// barriers, which is right for code that the whole block reaches together (BlockSum);
// atomicAdd takes a lock. A launch outside CUDA's limits (more than 1024 threads per block,
// gridDim.y or .z over 65535) returns cudaErrorInvalidConfiguration, as the GPU does.
#ifndef CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_RUNTIME_API_H_
#define CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_RUNTIME_API_H_

#include <atomic>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};

// The runtime's values for the codes used here.
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
};
struct CUstream_st;
using cudaStream_t = CUstream_st*;

inline int64_t min(int64_t a, int64_t b) { return b < a ? b : a; }

// Each emulated thread's coordinates; the launch's shape.
inline thread_local uint3 threadIdx;
inline thread_local uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

namespace convnextv2::models::cuda::emulation {

// One block's barrier and shuffle buffer.
class Block {
 public:
  explicit Block(unsigned threads) : threads_(threads), exchange_(threads) {}

  void Sync() {
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation) std::this_thread::yield();
  }

  float* exchange() { return exchange_.data(); }

 private:
  const unsigned threads_;
  std::vector<float> exchange_;
  std::atomic<unsigned> arrived_{0};
  std::atomic<uint64_t> generation_{0};
};

inline thread_local Block* current_block = nullptr;

// Launches so far, for tests that must know the emulated kernels ran.
inline std::atomic<int64_t> launches{0};

inline unsigned LinearThreadIndex() {
  return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

inline std::mutex& AtomicMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace convnextv2::models::cuda::emulation

inline void __syncthreads() { convnextv2::models::cuda::emulation::current_block->Sync(); }

// Lane i gets lane (i ^ lane_mask)'s value; lanes stay within their warp for lane_mask < 32.
inline float __shfl_xor_sync(unsigned /*mask*/, float v, int lane_mask) {
  namespace em = convnextv2::models::cuda::emulation;
  em::Block* block = em::current_block;
  const unsigned me = em::LinearThreadIndex();
  block->exchange()[me] = v;
  block->Sync();
  const float other = block->exchange()[me ^ static_cast<unsigned>(lane_mask)];
  block->Sync();
  return other;
}

inline float atomicAdd(float* address, float v) {
  std::lock_guard<std::mutex> lock(convnextv2::models::cuda::emulation::AtomicMutex());
  const float old = *address;
  *address = old + v;
  return old;
}

namespace convnextv2::models::cuda {

// What `kernel<<<grid, block, 0, stream>>>(args...)` does, on the CPU: see the file comment.
template <typename... Params, typename... Args>
cudaError_t Launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t /*stream*/,
                   Args... args) {
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0 || grid.y > 65535 || grid.z > 65535) {
    return cudaErrorInvalidConfiguration;
  }
  ++emulation::launches;
  gridDim = grid;
  blockDim = block;
  // One thread per block thread for the whole launch; they walk the blocks in order and meet
  // at the barrier after each, so no two blocks share the statics at once.
  emulation::Block shared(static_cast<unsigned>(threads));
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      emulation::current_block = &shared;
      threadIdx = uint3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
      for (unsigned bz = 0; bz < grid.z; ++bz) {
        for (unsigned by = 0; by < grid.y; ++by) {
          for (unsigned bx = 0; bx < grid.x; ++bx) {
            blockIdx = uint3{bx, by, bz};
            kernel(args...);
            shared.Sync();
          }
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return cudaSuccess;
}

}  // namespace convnextv2::models::cuda

#endif  // CONVNEXTV2_MODELS_CUDA_EMULATION_CUDA_RUNTIME_API_H_
