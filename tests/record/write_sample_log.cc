// Writes a small metrics.h5 with known values for tests that read it with other tools
// (h5dump, h5py): write_sample_log PATH.
#include <cstdio>

#include "convnextv2/record/metrics_log.h"
#include "convnextv2/record/task_records.h"

int main(int argc, char** argv) {
  using namespace convnextv2::record;
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_sample_log PATH\n");
    return 2;
  }
  const FinetuneRecord task = MakeFinetuneRecord({});
  auto w = MetricsWriter::Create(argv[1],
                                 {{"config", std::string("train { seed: 3 }\n")},
                                  {"seed", int64_t{3}}},
                                 task.declaration);
  if (!w.ok()) return 1;
  for (int64_t s = 0; s < 6; ++s) {
    (*w)->AddTrain({{"step", s}, {"epoch", s / 3}, {"loss", 1.5 - 0.25 * s}, {"lr", 0.001}});
    if (s % 3 == 2) (*w)->AddEval({{"step", s}, {"epoch", s / 3}, {"acc1", 60.0 + s}});
  }
  if (!(*w)->Flush().ok()) return 1;
  return TruncateAfterStep(argv[1], 4).ok() ? 0 : 1;  // leaves steps 0..4, one eval row
}
