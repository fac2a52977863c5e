// Writes a small metrics.h5 with known values for tests that read it with other tools
// (h5dump, h5py): write_sample_log PATH.
#include <cstdio>

#include "convnextv2/record/metrics_log.h"

int main(int argc, char** argv) {
  using namespace convnextv2::record;
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_sample_log PATH\n");
    return 2;
  }
  auto w = MetricsWriter::Create(argv[1], {{"config", std::string("train { seed: 3 }\n")},
                                           {"seed", int64_t{3}}});
  if (!w.ok()) return 1;
  for (int64_t s = 0; s < 6; ++s) {
    TrainRow r;
    r.step = s;
    r.epoch = s / 3;
    r.loss = 1.5 - 0.25 * s;
    r.lr = 0.001;
    (*w)->AddTrain(r);
    if (s % 3 == 2) {
      EvalRow e;
      e.step = s;
      e.epoch = s / 3;
      e.acc1 = 60 + s;
      (*w)->AddEval(e);
    }
  }
  if (!(*w)->Flush().ok()) return 1;
  return TruncateAfterStep(argv[1], 4).ok() ? 0 : 1;  // leaves steps 0..4, one eval row
}
