// The header's kind and best_of: strings on the wire (the names users' files and PyTorch code
// hold), enums in the code, and an unknown value is an error naming the file and the value.
#include "convnextv2/checkpoint/header_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace convnextv2::checkpoint {
namespace {

using ::testing::HasSubstr;

TEST(HeaderFields, TheWireStringsStay) {
  CheckpointHeader h;
  SetKind(Kind::kTraining, &h);
  EXPECT_EQ(h.kind(), "training");
  SetKind(Kind::kWeights, &h);
  EXPECT_EQ(h.kind(), "weights");
  EXPECT_FALSE(h.has_best_of());
  SetBestOf(BestOf::kModel, &h);
  EXPECT_EQ(h.best_of(), "model");
  SetBestOf(BestOf::kModelEma, &h);
  EXPECT_EQ(h.best_of(), "model_ema");  // what load_in_pytorch.py and users' scripts read
}

TEST(HeaderFields, ParsedIntoEnums) {
  CheckpointHeader h;
  h.set_kind("training");
  EXPECT_EQ(*KindOf(h, "a.pth"), Kind::kTraining);
  EXPECT_EQ(*BestOfOf(h, "a.pth"), std::nullopt);  // no best_of: not a best file
  h.set_kind("weights");
  h.set_best_of("model_ema");
  EXPECT_EQ(*KindOf(h, "b.pth"), Kind::kWeights);
  EXPECT_EQ(*BestOfOf(h, "b.pth"), BestOf::kModelEma);
  EXPECT_EQ(KindName(Kind::kWeights), "weights");
  EXPECT_EQ(BestOfName(BestOf::kModel), "model");
}

TEST(HeaderFields, UnknownValuesNameTheFileAndValue) {
  CheckpointHeader h;
  absl::StatusOr<Kind> none = KindOf(h, "/runs/x/checkpoint-3.pth");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(none.status().message(), "/runs/x/checkpoint-3.pth: header kind: '' is not one of: "
                                     "training, weights");
  h.set_kind("Training");
  EXPECT_THAT(std::string(KindOf(h, "c.pth").status().message()),
              HasSubstr("c.pth: header kind: 'Training' is not one of"));
  h.set_best_of("ema");
  EXPECT_EQ(BestOfOf(h, "d.pth").status().message(),
            "d.pth: header best_of: 'ema' is not one of: model, model_ema");
}

}  // namespace
}  // namespace convnextv2::checkpoint
