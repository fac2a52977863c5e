// config::Choices: one table per string field with a fixed set of values, used by the field's
// validator (Check) and by the code that reads it (Of), so that no code compares the strings.
#include "convnextv2/config/choices.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "convnextv2/config/checks.h"

namespace convnextv2::config {
namespace {

using ::testing::HasSubstr;

enum class Mode { kBatch, kPair, kElem };
enum class Dtype { kAutomatic, kBfloat16, kFloat16 };

const Choices<Mode>& Modes() {
  static const auto* const kModes = new Choices<Mode>(
      "aug.mixup_mode", {{"batch", Mode::kBatch}, {"pair", Mode::kPair}, {"elem", Mode::kElem}});
  return *kModes;
}

TEST(Choices, AcceptedValuesRecordNothing) {
  Checks checks(/*pretrain=*/false);
  EXPECT_EQ(Modes().Check("batch", checks), Mode::kBatch);
  EXPECT_EQ(Modes().Check("pair", checks), Mode::kPair);
  EXPECT_EQ(Modes().Check("elem", checks), Mode::kElem);
  EXPECT_TRUE(checks.errors().empty());
  EXPECT_TRUE(checks.ToStatus("invalid finetune config").ok());
}

TEST(Choices, ARejectedValueIsOneLineNamingFieldValueAndChoices) {
  Checks checks(/*pretrain=*/false);
  EXPECT_EQ(Modes().Check("row", checks), std::nullopt);
  EXPECT_EQ(Modes().Check("Batch", checks), std::nullopt);  // exact match: case-sensitive
  ASSERT_EQ(checks.errors().size(), 2u);
  EXPECT_EQ(checks.errors()[0], "aug.mixup_mode: 'row' is not one of: batch, pair, elem");
  EXPECT_EQ(checks.errors()[1], "aug.mixup_mode: 'Batch' is not one of: batch, pair, elem");
  const absl::StatusOr<Mode> parsed = Modes().Parse("row");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(), checks.errors()[0]);
}

TEST(Choices, OfAndNameRoundTrip) {
  for (const char* v : {"batch", "pair", "elem"}) EXPECT_EQ(Modes().Name(Modes().Of(v)), v);
  EXPECT_EQ(Modes().Of("pair"), Mode::kPair);
  EXPECT_EQ(Modes().Names(), "batch, pair, elem");
}

TEST(Choices, AnEmptyEntryIsListedLastWithWhatItMeans) {
  const Choices<Dtype> dtypes(
      "train.amp_dtype",
      {{"", Dtype::kAutomatic}, {"bfloat16", Dtype::kBfloat16}, {"float16", Dtype::kFloat16}},
      "automatic");
  EXPECT_EQ(dtypes.Of(""), Dtype::kAutomatic);
  EXPECT_EQ(dtypes.Of("float16"), Dtype::kFloat16);
  EXPECT_EQ(dtypes.Parse("fp16").status().message(),
            "train.amp_dtype: 'fp16' is not one of: bfloat16, float16, or empty for automatic");
  EXPECT_FALSE(Modes().Parse("").ok());  // no empty entry: "" is refused
}

TEST(ChoicesDeathTest, OfAnUnvalidatedValueIsAProgrammerError) {
  EXPECT_DEATH(Modes().Of("row"), HasSubstr("unvalidated config value: aug.mixup_mode: 'row'"));
}

}  // namespace
}  // namespace convnextv2::config
