// Images per second of the fine-tuning train pipeline (read, decode, RandomResizedCrop 224,
// flip, RandAugment rand-m9-mstd0.5-inc1, normalize, RandomErasing 0.25) on an ImageFolder,
// with JPEG DCT-domain scaling on and off, side by side in one run.
//
//   bazel run -c opt //tools/bench:make_image_folder -- --out=/tmp/fake --images=2000 --splits=
//   bazel run -c opt //tools/bench:loader_bench -- --data=/tmp/fake --threads=2
//   /usr/bin/python3 tools/bench/torchvision_loader_bench.py --data=/tmp/fake --workers=2
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gflags/gflags.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/strings/str_split.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/rand_augment.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/util/malloc_tuning.h"

DEFINE_string(data, "", "an ImageFolder (class subfolders of images)");
DEFINE_int32(threads, 2, "decode/transform threads");
DEFINE_int32(batch, 64, "batch size");
DEFINE_int32(prefetch, 2, "batches prepared ahead (data.prefetch_batches)");
DEFINE_int32(batches, 20, "timed batches per variant");
DEFINE_int32(size, 224, "crop size");
DEFINE_string(aa, "rand-m9-mstd0.5-inc1", "RandAugment policy, or none");
DEFINE_double(reprob, 0.25, "random erasing probability");
DEFINE_string(variants, "dct,full", "dct (DCT scaling on) and/or full (off), in this order");

namespace {

using namespace convnextv2::data;

double ImagesPerSecond(const Dataset& ds, bool dct) {
  TrainTransform::Options o;
  o.input_size = FLAGS_size;
  if (FLAGS_aa != "none") {
    RandAugmentParams p;
    for (int c = 0; c < 3; ++c) p.fill[c] = static_cast<uint8_t>(255 * kImagenetMean[c] + 0.5);
    o.rand_augment = *RandAugment::Parse(FLAGS_aa, p);
  }
  o.erase.probability = FLAGS_reprob;
  o.dct_scaling = dct;
  TrainTransform t(o);
  Loader loader(&ds, &t, {.batch_size = FLAGS_batch, .shuffle = true, .drop_last = true,
                          .num_workers = FLAGS_threads, .prefetch_batches = FLAGS_prefetch});
  // As the torchvision side: the first batch warms up files and threads, untimed.
  const int64_t batches = std::min<int64_t>(FLAGS_batches, loader.num_batches() - 1);
  BatchIterator it = loader.Iterate(1);
  if (absl::StatusOr<Batch> first = it.Next(); !first.ok()) {
    std::fprintf(stderr, "%s\n", std::string(first.status().message()).c_str());
    std::exit(1);
  }
  const auto start = std::chrono::steady_clock::now();
  for (int64_t b = 0; b < batches; ++b) {
    absl::StatusOr<Batch> batch = it.Next();
    if (!batch.ok()) {
      std::fprintf(stderr, "%s\n", std::string(batch.status().message()).c_str());
      std::exit(1);
    }
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(batches) * FLAGS_batch / s;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  convnextv2::util::RetainFreedMemory(true);  // as the training binaries
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(FLAGS_data);
  if (!ds.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ds.status().message()).c_str());
    return 2;
  }
  std::printf("%s, %d threads, batch %d, %d batches, size %d, aa %s, reprob %.2f\n",
              (*ds)->Describe().c_str(), FLAGS_threads, FLAGS_batch, FLAGS_batches, FLAGS_size,
              FLAGS_aa.c_str(), FLAGS_reprob);
  for (absl::string_view v : absl::StrSplit(FLAGS_variants, ',')) {
    const double ips = ImagesPerSecond(**ds, v == "dct");
    std::printf("convnextv2 loader (%s): %.1f images/s\n",
                v == "dct" ? "DCT scaling" : "full decode", ips);
    std::fflush(stdout);
  }
  return 0;
}
