// The running means of the loops (train/meters.h), TopKCorrect and FormatDuration.
#include "convnextv2/train/meters.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace convnextv2::train {
namespace {

TEST(MeanMeter, WeightedMeanRecentWindowAndLast) {
  MeanMeter m(/*window=*/2);
  EXPECT_EQ(m.mean(), 0.0);
  EXPECT_EQ(m.recent(), 0.0);
  EXPECT_EQ(m.last(), 0.0);
  m.Add(1.0, /*weight=*/3);
  m.Add(5.0);
  m.Add(9.0);
  EXPECT_DOUBLE_EQ(m.mean(), (3.0 + 5.0 + 9.0) / 5.0);
  EXPECT_EQ(m.sum(), 17.0);
  EXPECT_EQ(m.count(), 5.0);
  EXPECT_EQ(m.recent(), 7.0);  // the last two values, unweighted
  EXPECT_EQ(m.last(), 9.0);
}

TEST(MeanMeter, RestoreContinuesTheMean) {
  MeanMeter whole, resumed;
  for (double v : {1.0, 2.0, 3.0}) whole.Add(v);
  resumed.Restore(3.0, 2.0);  // the sums after 1 and 2
  resumed.Add(3.0);
  EXPECT_EQ(resumed.mean(), whole.mean());
  EXPECT_EQ(resumed.count(), 3.0);
}

TEST(TopKCorrect, CountsLabelsAmongTheKLargest) {
  const at::Tensor logits = at::tensor({0.1, 0.5, 0.4, 0.9, 0.04, 0.06}).view({2, 3});
  const at::Tensor labels = at::tensor({2, 1}, at::kLong);
  EXPECT_EQ(TopKCorrect(logits, labels, 1), 0);
  EXPECT_EQ(TopKCorrect(logits, labels, 2), 1);   // row 0: 2 is second; row 1: 1 is third
  EXPECT_EQ(TopKCorrect(logits, labels, 5), 2);   // k capped at the 3 classes
}

TEST(FormatDuration, HoursMinutesSeconds) {
  EXPECT_EQ(FormatDuration(0), "0:00:00");
  EXPECT_EQ(FormatDuration(59.6), "0:01:00");
  EXPECT_EQ(FormatDuration(3723), "1:02:03");
  EXPECT_EQ(FormatDuration(-5), "0:00:00");
}

}  // namespace
}  // namespace convnextv2::train
