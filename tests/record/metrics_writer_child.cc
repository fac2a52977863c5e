// A process that writes a metric log the way a training run does, for the kill tests:
//   metrics_writer_child PATH FIRST_STEP END_STEP FLUSH_EVERY
// FIRST_STEP 0 creates PATH; otherwise the log is resumed after step FIRST_STEP - 1 (rows past
// it are dropped, as a run resumed from a checkpoint does). Steps FIRST_STEP..END_STEP-1 add
// SampleTrainRow(step) (and SampleEvalRow after every 10th step); every FLUSH_EVERY steps and at
// the end the log is flushed and, once Flush() has returned OK, the number of steps now durable
// is printed on its own line to stdout. Exit status 0, or 1 with the error on stderr.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "convnextv2/record/metrics_log.h"
#include "tests/record/sample_rows.h"

int main(int argc, char** argv) {
  using namespace convnextv2::record;
  int64_t first = 0, end = 0, every = 0;
  if (argc != 5 || !absl::SimpleAtoi(argv[2], &first) || !absl::SimpleAtoi(argv[3], &end) ||
      !absl::SimpleAtoi(argv[4], &every) || every < 1) {
    std::fprintf(stderr, "usage: metrics_writer_child PATH FIRST_STEP END_STEP FLUSH_EVERY\n");
    return 2;
  }
  const Attributes attributes = {{"config", std::string("train { seed: 3 }\n")},
                                 {"first_step", first}};
  absl::StatusOr<std::unique_ptr<MetricsWriter>> w =
      first == 0 ? MetricsWriter::Create(argv[1], attributes, convnextv2::testing::SampleDeclaration())
                 : MetricsWriter::Resume(argv[1], attributes, first - 1,
                                         convnextv2::testing::SampleDeclaration());
  if (!w.ok()) {
    std::fprintf(stderr, "%s\n", std::string(w.status().message()).c_str());
    return 1;
  }
  for (int64_t s = first; s < end; ++s) {
    (*w)->AddTrain(convnextv2::testing::SampleTrainRow(s));
    if (s % 10 == 9) (*w)->AddEval(convnextv2::testing::SampleEvalRow(s));
    if ((s + 1) % every == 0 || s + 1 == end) {
      if (absl::Status st = (*w)->Flush(); !st.ok()) {
        std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
        return 1;
      }
      std::printf("%lld\n", static_cast<long long>(s + 1));
      std::fflush(stdout);
    }
  }
  return 0;
}
