// apps/evaluate.h: the accuracy and loss of a classifier over a loader, padding excluded, equal
// to the same figures computed batch by batch here.
#include "convnextv2/apps/evaluate.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <gtest/gtest.h>

#include <memory>

#include "convnextv2/config/config.h"
#include "convnextv2/data/synthetic_dataset.h"
#include "convnextv2/data/transforms.h"
#include "convnextv2/models/registry.h"
#include "convnextv2/optim/param_groups.h"
#include "convnextv2/train/meters.h"

namespace convnextv2::apps {
namespace {

struct Expected {
  double loss_sum = 0;
  int64_t correct1 = 0, correct5 = 0, samples = 0;
};

// The figures of `loader`'s batches without their padding, summed here.
Expected Reference(models::ConvNeXtV2& model, const data::Loader& loader) {
  c10::NoGradGuard no_grad;
  model->eval();
  Expected e;
  data::BatchIterator batches = loader.Iterate(0);
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    data::Batch batch = *batches.Next();
    std::vector<int64_t> keep;
    for (size_t i = 0; i < batch.padding.size(); ++i) {
      if (!batch.padding[i]) keep.push_back(static_cast<int64_t>(i));
    }
    if (keep.empty()) continue;
    const at::Tensor index = at::tensor(keep, at::kLong);
    const at::Tensor labels = batch.labels.index_select(0, index);
    const at::Tensor logits = model->forward(batch.images.index_select(0, index));
    e.loss_sum += at::cross_entropy_loss(logits, labels).item<double>() * labels.size(0);
    e.correct1 += logits.argmax(1).eq(labels).sum().item<int64_t>();
    e.correct5 += train::TopKCorrect(logits, labels, 5);
    e.samples += labels.size(0);
  }
  return e;
}

class EvaluateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = config::ModeDefaults(config::Mode::kFinetune);
    config_.mutable_model()->set_input_size(32);
    config_.mutable_model()->set_nb_classes(10);
    config_.mutable_data()->set_data_set("synthetic");
    config_.mutable_data()->set_num_workers(1);
    config_.mutable_train()->set_batch_size(4);
    config_.mutable_train()->set_device("cpu");
    at::manual_seed(11);
    model_ = *models::CreateConvNeXtV2("convnextv2_atto", 10);
    transform_ = *data::MakeTransform(config_, data::Split::kEval);
    dataset_ = std::make_unique<data::SyntheticDataset>(9, 10, 32, 5);
    train::RecipeOptions options;
    options.groups = [this] {
      return optim::FinetuneParamGroups(config_, model_->named_parameters(),
                                        model_->options.depths());
    };
    recipe_ = *train::TrainingRecipe::Create(config_, model_.ptr(), c10::Device(c10::kCPU), 3, 1,
                                             std::move(options));
  }
  std::unique_ptr<data::Loader> ShardLoader(int rank, int world) {
    return std::make_unique<data::Loader>(
        dataset_.get(), transform_.get(),
        data::LoaderOptions(config_, data::Split::kEval, rank, world, c10::Device(c10::kCPU)));
  }

  ExperimentConfig config_;
  models::ConvNeXtV2 model_{nullptr};
  std::unique_ptr<data::Transform> transform_;
  std::unique_ptr<data::SyntheticDataset> dataset_;
  std::unique_ptr<train::TrainingRecipe> recipe_;
};

TEST_F(EvaluateTest, AccuracyAndLossOfTheWholeSet) {
  std::unique_ptr<data::Loader> loader = ShardLoader(0, 1);
  const Expected want = Reference(model_, *loader);
  absl::StatusOr<EvalStats> got =
      Evaluate(model_, *loader, c10::Device(c10::kCPU), *recipe_, /*comm=*/nullptr);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->samples, 9);
  EXPECT_EQ(want.samples, 9);
  EXPECT_DOUBLE_EQ(got->acc1, 100.0 * want.correct1 / 9);
  EXPECT_DOUBLE_EQ(got->acc5, 100.0 * want.correct5 / 9);
  EXPECT_NEAR(got->loss, want.loss_sum / 9, 1e-12);
  EXPECT_GT(got->loss, 0);
  EXPECT_LT(got->acc5, 100.0 + 1e-9);
}

// Rank 1 of 2 gets 5 of the 9 images, one of them the sampler's repeat (padding): it counts 4.
TEST_F(EvaluateTest, APaddedShardCountsOnlyItsOwnImages) {
  std::unique_ptr<data::Loader> shard = ShardLoader(1, 2);
  const Expected want = Reference(model_, *shard);
  absl::StatusOr<EvalStats> got =
      Evaluate(model_, *shard, c10::Device(c10::kCPU), *recipe_, /*comm=*/nullptr);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->samples, 4);
  EXPECT_EQ(want.samples, 4);
  EXPECT_DOUBLE_EQ(got->acc1, 100.0 * want.correct1 / 4);
  EXPECT_NEAR(got->loss, want.loss_sum / 4, 1e-12);
}

}  // namespace
}  // namespace convnextv2::apps
