// config::Checks: the error list every package validator writes to.
#include "convnextv2/config/checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace convnextv2::config {
namespace {

TEST(Checks, NothingRecordedIsOk) {
  Checks checks(/*pretrain=*/false);
  checks.Require(true, "never: ", 1);
  EXPECT_TRUE(checks.errors().empty());
  EXPECT_TRUE(checks.ToStatus("invalid finetune config").ok());
  EXPECT_FALSE(checks.pretrain());
  EXPECT_TRUE(Checks(/*pretrain=*/true).pretrain());
}

TEST(Checks, EveryFailureIsOneLineInOrder) {
  Checks checks(/*pretrain=*/false);
  checks.Require(false, "train.batch_size: ", -4, " must be positive");
  checks.Add("aug.mixup_mode: 'row' is not one of: batch, pair, elem");
  checks.Add("data.data_set: 'x' is not one of: IMNET");
  ASSERT_EQ(checks.errors().size(), 3u);
  EXPECT_EQ(checks.errors()[1], "aug.mixup_mode: 'row' is not one of: batch, pair, elem");
  const absl::Status s = checks.ToStatus("invalid finetune config");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "invalid finetune config:\n"
            "  train.batch_size: -4 must be positive\n"
            "  aug.mixup_mode: 'row' is not one of: batch, pair, elem\n"
            "  data.data_set: 'x' is not one of: IMNET");
}

}  // namespace
}  // namespace convnextv2::config
