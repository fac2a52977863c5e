// The dataset registry (official --data_set names, what each entry declares) and data.* /
// aug.* validation, without libtorch or files.
#include "convnextv2/data/config_checks.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "convnextv2/data/dataset_registry.h"

namespace convnextv2::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Errors(const ExperimentConfig& c, bool pretrain = false) {
  config::Checks checks(pretrain);
  CheckDataConfig(c, checks);
  return checks.errors();
}

ExperimentConfig WithDataSet(const std::string& name, const std::string& path) {
  ExperimentConfig c;
  c.mutable_data()->set_data_set(name);
  c.mutable_data()->set_data_path(path);
  return c;
}

TEST(RegisteredDatasets, OfficialNamesOnceEachWithWhatTheyDeclare) {
  EXPECT_EQ(DatasetNamesList(), "IMNET, image_folder, CIFAR, IDX, synthetic");
  std::set<absl::string_view> names;
  for (const DatasetEntry* e : RegisteredDatasets()) {
    EXPECT_TRUE(names.insert(e->name).second) << "registered twice: " << e->name;
    EXPECT_NE(e->open, nullptr) << e->name;
    absl::StatusOr<const DatasetEntry*> found = FindDataset(e->name);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(*found, e);
  }
  // The small-image transform is for the 28-32 pixel sets; only synthetic needs no folder; only
  // CIFAR's official build_dataset takes nb_classes from the data.
  for (const auto& [name, small, files, classes] :
       std::vector<std::tuple<std::string, bool, bool, bool>>{
           {"IMNET", false, true, false},
           {"image_folder", false, true, false},
           {"CIFAR", false, true, true},
           {"IDX", true, true, false},
           {"synthetic", true, false, false}}) {
    const DatasetEntry* e = *FindDataset(name);
    EXPECT_EQ(e->small_images, small) << name;
    EXPECT_EQ(e->reads_files, files) << name;
    EXPECT_EQ(e->classes_in_files != nullptr, classes) << name;
  }
}

TEST(FindDataset, CaseSensitiveAsArgparseChoices) {
  absl::StatusOr<const DatasetEntry*> e = FindDataset("imnet");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(),
            "'imnet' is not one of: IMNET, image_folder, CIFAR, IDX, synthetic");
}

TEST(CheckDataConfig, ValidConfigsPass) {
  EXPECT_THAT(Errors(WithDataSet("IDX", "/data/fashion-mnist")), ElementsAre());
  EXPECT_THAT(Errors(WithDataSet("synthetic", "")), ElementsAre());
  EXPECT_THAT(Errors(WithDataSet("IMNET", "/data/imagenet")), ElementsAre());
  EXPECT_THAT(Errors(WithDataSet("CIFAR", "/data/cifar-100-binary")), ElementsAre());
}

TEST(CheckDataConfig, DatasetsReadingFilesNeedAPath) {
  EXPECT_THAT(Errors(WithDataSet("CIFAR", "")),
              ElementsAre("data.data_path: empty; data_set CIFAR needs a dataset folder"));
  EXPECT_THAT(Errors(WithDataSet("imagenet", "/d")),
              ElementsAre(HasSubstr("data.data_set: 'imagenet' is not one of: IMNET")));
}

TEST(CheckDataConfig, ImageFolderFineTuningEvaluatesOnEvalDataPath) {
  ExperimentConfig c = WithDataSet("image_folder", "/data/train");
  EXPECT_THAT(Errors(c), ElementsAre(HasSubstr("data.eval_data_path: empty; data_set "
                                               "image_folder evaluates on that folder")));
  EXPECT_THAT(Errors(c, /*pretrain=*/true), ElementsAre());  // pre-training does not evaluate
  c.mutable_eval()->set_disable_eval(true);
  EXPECT_THAT(Errors(c), ElementsAre());
  c.mutable_eval()->set_disable_eval(false);
  c.mutable_data()->set_eval_data_path("/data/val");
  EXPECT_THAT(Errors(c), ElementsAre());
}

TEST(CheckDataConfig, AugmentationAndMixup) {
  ExperimentConfig c = WithDataSet("synthetic", "");
  c.mutable_aug()->set_reprob(2);
  c.mutable_aug()->set_mixup(0.8);
  c.mutable_train()->set_batch_size(5);
  c.mutable_aug()->set_train_interpolation("nearest");
  EXPECT_THAT(Errors(c),
              ElementsAre("aug.train_interpolation: 'nearest' is not one of: bicubic, "
                          "bilinear, random",
                          "aug.reprob: 2 must be in [0, 1]",
                          HasSubstr("train.batch_size: 5 must be even with mixup/cutmix")));
}

}  // namespace
}  // namespace convnextv2::data
