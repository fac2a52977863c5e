// Images per second of the fine-tuning train pipeline (read, decode, RandomResizedCrop 224,
// flip, RandAugment rand-m9-mstd0.5-inc1, normalize, RandomErasing 0.25) on an ImageFolder,
// with JPEG DCT-domain scaling on and off, side by side in one run.
//
//   bazel run -c opt //tools/bench:make_image_folder -- --out=/tmp/fake --images=2000 --splits=
//   bazel run -c opt //tools/bench:loader_bench -- --data=/tmp/fake --threads=2
//   /usr/bin/python3 tools/bench/torchvision_loader_bench.py --data=/tmp/fake --workers=2
//
// --profile_images=N instead times each stage of one image on one thread over the first N
// images: read, header and box, decode (crop box at its DCT scale), crop + resize, flip, every
// RandAugment op at the policy's magnitude, normalize, erase; then each stage's expected share of
// an image's time (a RandAugment op runs with probability layers * 0.5 / ops, erasing with
// reprob).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gflags/gflags.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "convnextv2/data/augment_ops.h"
#include "convnextv2/data/image_decode.h"
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
DEFINE_int32(profile_images, 0, "time each stage over this many images (one thread) instead");

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

// Seconds per call of each stage, summed over the images.
class StageTimes {
 public:
  template <typename F>
  auto Time(const std::string& stage, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    struct Add {
      StageTimes* self;
      const std::string& stage;
      std::chrono::steady_clock::time_point t0;
      ~Add() {
        self->total_[stage] +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    } add{this, stage, t0};
    return f();
  }
  const std::map<std::string, double>& total() const { return total_; }

 private:
  std::map<std::string, double> total_;
};

RandAugment PolicyOrDie() {
  RandAugmentParams p;
  for (int c = 0; c < 3; ++c) p.fill[c] = static_cast<uint8_t>(255 * kImagenetMean[c] + 0.5);
  absl::StatusOr<RandAugment> ra = RandAugment::Parse(FLAGS_aa, p);
  if (!ra.ok()) {
    std::fprintf(stderr, "%s\n", std::string(ra.status().message()).c_str());
    std::exit(2);
  }
  return *ra;
}

// The train transform's stages one by one, as TrainTransform::ApplyExampleInto runs them.
void ProfileOne(const ImageFolder& ds, int64_t index, const RandAugment& ra, StageTimes& t) {
  SampleRng rng(static_cast<uint64_t>(index) + 1);
  const Example ex = t.Time("read", [&] { return *ds.Get(index); });
  DecodeOptions decode;
  CropBox box;
  t.Time("header + crop box", [&] {
    const ImageSize size = *PeekImageSize(ex.encoded, ex.path);
    box = RandomResizedCropBox(size.width, size.height, 0.08, 1.0, 3.0 / 4, 4.0 / 3, rng);
    const double r = std::min(1.0, std::max(static_cast<double>(FLAGS_size) / box.width,
                                            static_cast<double>(FLAGS_size) / box.height));
    decode.min_width = static_cast<int>(std::ceil(size.width * r));
    decode.min_height = static_cast<int>(std::ceil(size.height * r));
    const ImageSize scaled = ScaledJpegSize(size, decode);
    const double sx = static_cast<double>(scaled.width) / size.width;
    const double sy = static_cast<double>(scaled.height) / size.height;
    box = {static_cast<int>(box.top * sy), static_cast<int>(box.left * sx),
           std::max(1, std::min(scaled.height - static_cast<int>(box.top * sy),
                                static_cast<int>(std::lround(box.height * sy)))),
           std::max(1, std::min(scaled.width - static_cast<int>(box.left * sx),
                                static_cast<int>(std::lround(box.width * sx))))};
    return 0;
  });
  const Image crop = t.Time("decode (box, DCT scale)", [&] {
    return *DecodeJpegCrop(ex.encoded, ex.path, decode, box.top, box.left, box.height,
                           box.width);
  });
  Image img = t.Time("resize to size (bicubic)", [&] {
    return ops::Resize(crop, FLAGS_size, FLAGS_size, ops::Interp::kBicubic);
  });
  t.Time("flip", [&] { ops::FlipHorizontal(img); return 0; });
  for (const std::string& op : ra.op_names()) {
    Image copy = img;
    t.Time("RandAugment " + op, [&] { ra.ApplyOp(op, ra.magnitude(), copy, rng); return 0; });
  }
  std::vector<float> out(3 * FLAGS_size * FLAGS_size);
  t.Time("normalize", [&] { NormalizeInto(img, kImagenetMean, kImagenetStd, out.data()); return 0; });
  EraseOptions erase;
  erase.probability = 1.0;
  t.Time("erase (when drawn)", [&] {
    RandomErase(out.data(), 3, FLAGS_size, FLAGS_size, erase, rng);
    return 0;
  });
}

void Profile(const ImageFolder& ds) {
  const RandAugment ra = PolicyOrDie();
  StageTimes t;
  const int64_t n = std::min<int64_t>(FLAGS_profile_images, ds.size());
  for (int64_t i = 0; i < n; ++i) ProfileOne(ds, i, ra, t);
  const double op_weight = ra.num_layers() * 0.5 / ra.op_names().size();
  double expected = 0;
  std::map<std::string, double> per_image;
  for (const auto& [stage, total] : t.total()) {
    const double weight = absl::StartsWith(stage, "RandAugment") ? op_weight
                          : absl::StartsWith(stage, "erase")     ? FLAGS_reprob
                                                                 : 1.0;
    per_image[stage] = weight * total / n;
    expected += per_image[stage];
  }
  std::printf("stage profile over %lld images, one thread (us per call; expected us per image "
              "and share):\n", static_cast<long long>(n));
  for (const auto& [stage, total] : t.total()) {
    std::printf("  %-34s %8.1f us  %8.1f us  %5.1f%%\n", stage.c_str(), 1e6 * total / n,
                1e6 * per_image[stage], 100 * per_image[stage] / expected);
  }
  std::printf("  expected per image: %.1f us (%.0f images/s per thread)\n", 1e6 * expected,
              1.0 / expected);
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
  if (FLAGS_profile_images > 0) {
    Profile(**ds);
    return 0;
  }
  for (absl::string_view v : absl::StrSplit(FLAGS_variants, ',')) {
    const double ips = ImagesPerSecond(**ds, v == "dct");
    std::printf("convnextv2 loader (%s): %.1f images/s\n",
                v == "dct" ? "DCT scaling" : "full decode", ips);
    std::fflush(stdout);
  }
  return 0;
}
