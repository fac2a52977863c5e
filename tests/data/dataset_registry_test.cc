// ImageFolder / IMNET / image_folder / CIFAR datasets, and the loader's corrupt-file policy.
#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "convnextv2/data/cifar_dataset.h"
#include "convnextv2/data/dataset.h"
#include "convnextv2/data/image_folder.h"
#include "convnextv2/data/loader.h"
#include "convnextv2/data/transforms.h"
#include "tests/data/test_images.h"

namespace convnextv2::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::EncodeJpeg;
using testing::EncodePng;
using testing::Gradient;
using testing::TmpDir;
using testing::WriteBytes;

// root/{cat,ant,bee}: cat 2 files (a JPEG and a PNG in a subfolder), ant 1, bee 1, plus a text
// file that is not an image.
void WriteTree(const std::string& root) {
  WriteBytes(root + "/cat/b.JPG", EncodeJpeg(Gradient(40, 30)));
  WriteBytes(root + "/cat/sub/a.png", EncodePng(Gradient(30, 40)));
  WriteBytes(root + "/cat/notes.txt", "not an image");
  WriteBytes(root + "/ant/x.jpeg", EncodeJpeg(Gradient(48, 48)));
  WriteBytes(root + "/bee/y.png", EncodePng(Gradient(50, 20)));
}

TEST(ImageFolderTest, ClassesSortedFilesRecursiveImagesOnly) {
  const std::string root = TmpDir("tree");
  WriteTree(root);
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_THAT((*ds)->classes(), ElementsAre("ant", "bee", "cat"));
  EXPECT_THAT((*ds)->class_names(), ElementsAre("ant", "bee", "cat"));  // recorded in runs
  PrefixDataset prefix(std::move(*ds), 2);
  EXPECT_THAT(prefix.class_names(), ElementsAre("ant", "bee", "cat"));
  ds = ImageFolder::Open(root);
  ASSERT_EQ((*ds)->size(), 4);
  EXPECT_EQ((*ds)->label(0), 0);
  EXPECT_EQ((*ds)->label(1), 1);
  EXPECT_EQ((*ds)->label(2), 2);
  EXPECT_EQ((*ds)->label(3), 2);
  EXPECT_THAT((*ds)->path(2), HasSubstr("cat/b.JPG"));
  EXPECT_THAT((*ds)->path(3), HasSubstr("cat/sub/a.png"));
  absl::StatusOr<Example> ex = (*ds)->Get(3);
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(ex->label, 2);
  EXPECT_FALSE(ex->encoded.empty());
  EXPECT_EQ(ex->path, (*ds)->path(3));
}

// A slow listing (here: a clock that advances 30 s per class folder) reports progress per
// class folder in whole lines (not a terminal: a Slurm log), and a last line with the total.
TEST(ImageFolderTest, IndexingReportsProgressPerClassFolder) {
  const std::string root = TmpDir("progress_tree");
  WriteTree(root);
  std::FILE* out = std::tmpfile();
  double now = 0;
  util::Progress::Options options;
  options.out = out;
  options.terminal = 0;
  options.clock = [&now] { return now += 30; };
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root, options);
  ASSERT_TRUE(ds.ok()) << ds.status();
  std::string text(4096, '\0');
  std::rewind(out);
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_THAT(text, HasSubstr(absl::StrCat("indexing ", root, " 1/3 (33%)")));
  EXPECT_THAT(text, HasSubstr("1 images, class folders"));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("indexing ", root, " 3/3 (100%)")));
  EXPECT_THAT(text, HasSubstr("4 images\n"));
}

TEST(ImageFolderTest, MissingEmptyAndClasslessFoldersAreClearErrors) {
  absl::StatusOr<std::unique_ptr<ImageFolder>> missing = ImageFolder::Open("/no/such/folder");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/no/such/folder' does not exist"));
  const std::string flat = TmpDir("flat");
  WriteBytes(flat + "/a.png", EncodePng(Gradient(4, 4)));
  absl::StatusOr<std::unique_ptr<ImageFolder>> no_classes = ImageFolder::Open(flat);
  ASSERT_FALSE(no_classes.ok());
  EXPECT_THAT(std::string(no_classes.status().message()), HasSubstr("no class subfolders"));
  const std::string empty_class = TmpDir("empty_class");
  WriteBytes(empty_class + "/a/x.png", EncodePng(Gradient(4, 4)));
  WriteBytes(empty_class + "/b/readme.txt", "text");
  absl::StatusOr<std::unique_ptr<ImageFolder>> empty = ImageFolder::Open(empty_class);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("/b' has no image files"));
}

ExperimentConfig FolderConfig(const std::string& data_set, const std::string& path,
                              int classes) {
  ExperimentConfig c;
  c.mutable_data()->set_data_set(data_set);
  c.mutable_data()->set_data_path(path);
  c.mutable_model()->set_nb_classes(classes);
  c.mutable_model()->set_input_size(32);
  return c;
}

TEST(OpenDatasetTest, ImnetUsesTrainAndValAndChecksClassCount) {
  const std::string root = TmpDir("imnet");
  WriteTree(root + "/train");
  WriteTree(root + "/val");
  absl::StatusOr<std::unique_ptr<Dataset>> train =
      OpenDataset(FolderConfig("IMNET", root, 3), Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ((*train)->size(), 4);
  EXPECT_THAT((*train)->Describe(), HasSubstr(root + "/train"));
  absl::StatusOr<std::unique_ptr<Dataset>> val =
      OpenDataset(FolderConfig("IMNET", root, 3), Split::kEval);
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_THAT((*val)->Describe(), HasSubstr(root + "/val"));
  absl::StatusOr<std::unique_ptr<Dataset>> wrong =
      OpenDataset(FolderConfig("IMNET", root, 1000), Split::kTrain);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("model.nb_classes is 1000 but image folder"));
}

// The one class-count rule: datasets whose classes give the labels their meaning (folders,
// CIFAR) match nb_classes exactly; the others need only fit under it.
TEST(CheckClassCount, ExactOrAtMost) {
  EXPECT_TRUE(CheckClassCount(10, 10, ClassCount::kExact, "x").ok());
  EXPECT_TRUE(CheckClassCount(10, 10, ClassCount::kAtMost, "x").ok());
  EXPECT_TRUE(CheckClassCount(1000, 10, ClassCount::kAtMost, "x").ok());
  const absl::Status more = CheckClassCount(1000, 10, ClassCount::kExact, "holds 10");
  EXPECT_EQ(more.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(more.message(), "model.nb_classes is 1000 but holds 10");
  EXPECT_FALSE(CheckClassCount(5, 10, ClassCount::kAtMost, "x").ok());
  EXPECT_FALSE(CheckClassCount(5, 10, ClassCount::kExact, "x").ok());
}

TEST(OpenDatasetTest, MaxTrainImagesCutsOnlyTheTrainingSet) {
  ExperimentConfig c;
  c.mutable_data()->set_data_set("synthetic");
  c.mutable_data()->set_synthetic_train_size(40);
  c.mutable_data()->set_synthetic_eval_size(30);
  c.mutable_data()->set_max_train_images(12);
  c.mutable_model()->set_nb_classes(4);
  c.mutable_model()->set_input_size(32);
  absl::StatusOr<std::unique_ptr<Dataset>> train = OpenDataset(c, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ((*train)->size(), 12);
  EXPECT_THAT((*train)->Describe(), HasSubstr(", first 12 used"));
  c.mutable_data()->set_max_train_images(0);
  absl::StatusOr<std::unique_ptr<Dataset>> whole = OpenDataset(c, Split::kTrain);
  ASSERT_TRUE(whole.ok());
  // The prefix is the whole set's first images, unchanged.
  for (int64_t i : {0, 11}) {
    EXPECT_EQ((*train)->Get(i)->image.pixels, (*whole)->Get(i)->image.pixels) << i;
    EXPECT_EQ((*train)->Get(i)->label, (*whole)->Get(i)->label) << i;
  }
  c.mutable_data()->set_max_train_images(100);  // more than there are: all of them
  EXPECT_EQ((*OpenDataset(c, Split::kTrain))->size(), 40);
  c.mutable_data()->set_max_train_images(12);
  EXPECT_EQ((*OpenDataset(c, Split::kEval))->size(), 30);
}

TEST(OpenDatasetTest, UnusedLabelsTakeAnyClassCount) {
  // Pre-training: nb_classes (1000 by default) need not match; IMNET still reads data_path/train.
  const std::string root = TmpDir("unlabelled");
  WriteTree(root + "/train");
  for (const char* data_set : {"IMNET", "image_folder"}) {
    const std::string path = std::string(data_set) == "IMNET" ? root : root + "/train";
    absl::StatusOr<std::unique_ptr<Dataset>> ds =
        OpenDataset(FolderConfig(data_set, path, 1000), Split::kTrain, Labels::kUnused);
    ASSERT_TRUE(ds.ok()) << data_set << ": " << ds.status();
    EXPECT_EQ((*ds)->size(), 4) << data_set;
    EXPECT_THAT((*ds)->Describe(), HasSubstr(root + "/train")) << data_set;
    EXPECT_FALSE(OpenDataset(FolderConfig(data_set, path, 1000), Split::kTrain).ok()) << data_set;
  }
  // IMNET without train/ is still an error naming the folder.
  absl::StatusOr<std::unique_ptr<Dataset>> flat =
      OpenDataset(FolderConfig("IMNET", root + "/train", 1000), Split::kTrain, Labels::kUnused);
  ASSERT_FALSE(flat.ok());
  EXPECT_THAT(std::string(flat.status().message()), HasSubstr(root + "/train/train"));
}

TEST(OpenDatasetTest, ImageFolderEvalNeedsPathAndSameClasses) {
  const std::string root = TmpDir("imgf");
  WriteTree(root + "/tr");
  WriteTree(root + "/ev");
  ExperimentConfig c = FolderConfig("image_folder", root + "/tr", 3);
  absl::StatusOr<std::unique_ptr<Dataset>> no_eval = OpenDataset(c, Split::kEval);
  ASSERT_FALSE(no_eval.ok());
  EXPECT_THAT(std::string(no_eval.status().message()), HasSubstr("data.eval_data_path: empty"));
  c.mutable_data()->set_eval_data_path(root + "/ev");
  ASSERT_TRUE(OpenDataset(c, Split::kEval).ok());
  std::filesystem::rename(root + "/ev/bee", root + "/ev/bug");
  absl::StatusOr<std::unique_ptr<Dataset>> differ = OpenDataset(c, Split::kEval);
  ASSERT_FALSE(differ.ok());
  EXPECT_THAT(std::string(differ.status().message()), HasSubstr("class 1 is 'bee'"));
}

std::string CifarRecord(int label_bytes, int label, int seed) {
  std::string r;
  if (label_bytes == 2) r += static_cast<char>(label / 10);  // coarse
  r += static_cast<char>(label);
  for (int c = 0; c < 3; ++c) {
    for (int p = 0; p < 1024; ++p) r += static_cast<char>((seed + c * 50 + p) & 255);
  }
  return r;
}

TEST(CifarTest, Cifar100FineLabelsAndPlanarToInterleaved) {
  const std::string dir = TmpDir("cifar100");
  WriteBytes(dir + "/train.bin", CifarRecord(2, 57, 0) + CifarRecord(2, 3, 9));
  WriteBytes(dir + "/test.bin", CifarRecord(2, 99, 1));
  absl::StatusOr<std::unique_ptr<CifarDataset>> ds = CifarDataset::Open(dir, Split::kTrain);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->num_classes(), 100);
  const std::vector<std::string> names = (*ds)->class_names();  // the official fine labels
  ASSERT_EQ(names.size(), 100u);
  EXPECT_EQ(names[0], "apple");
  EXPECT_EQ(names[57], "pear");
  EXPECT_EQ(names[99], "worm");
  ASSERT_EQ((*ds)->size(), 2);
  absl::StatusOr<Example> ex = (*ds)->Get(1);
  ASSERT_TRUE(ex.ok());
  EXPECT_EQ(ex->label, 3);
  EXPECT_EQ(ex->image.pixels[0], 9);        // R of pixel 0
  EXPECT_EQ(ex->image.pixels[1], 59);       // G of pixel 0
  EXPECT_EQ(ex->image.pixels[3 * 5 + 2], 9 + 100 + 5);  // B of pixel 5
  absl::StatusOr<std::unique_ptr<CifarDataset>> test = CifarDataset::Open(dir, Split::kEval);
  ASSERT_TRUE(test.ok());
  EXPECT_EQ((*test)->Get(0)->label, 99);
}

TEST(CifarTest, Cifar10BatchesAndErrors) {
  const std::string dir = TmpDir("cifar10");
  for (int i = 1; i <= 5; ++i) {
    WriteBytes(dir + "/data_batch_" + std::to_string(i) + ".bin", CifarRecord(1, i, i));
  }
  WriteBytes(dir + "/test_batch.bin", CifarRecord(1, 7, 0).substr(0, 1000));
  absl::StatusOr<std::unique_ptr<CifarDataset>> ds = CifarDataset::Open(dir, Split::kTrain);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->num_classes(), 10);
  EXPECT_THAT((*ds)->class_names(), ElementsAre("airplane", "automobile", "bird", "cat", "deer",
                                                "dog", "frog", "horse", "ship", "truck"));
  EXPECT_EQ((*ds)->size(), 5);
  EXPECT_EQ((*ds)->Get(4)->label, 5);
  absl::StatusOr<std::unique_ptr<CifarDataset>> truncated = CifarDataset::Open(dir, Split::kEval);
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(std::string(truncated.status().message()), HasSubstr("test_batch.bin' has 1000 bytes"));
  absl::StatusOr<std::unique_ptr<CifarDataset>> none = CifarDataset::Open(TmpDir("c0"), Split::kTrain);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("holds neither CIFAR-100"));
}

// A folder with one truncated JPEG: "fail" names it, "skip" replaces and counts it.
TEST(LoaderTest, CorruptImagePolicy) {
  const std::string root = TmpDir("corrupt");
  WriteBytes(root + "/a/0.png", EncodePng(Gradient(40, 40)));
  const std::string jpg = EncodeJpeg(Gradient(64, 64));
  WriteBytes(root + "/a/1.jpg", jpg.substr(0, jpg.size() / 3));
  WriteBytes(root + "/b/2.png", EncodePng(Gradient(36, 44)));
  WriteBytes(root + "/b/3.jpg", EncodeJpeg(Gradient(50, 40)));
  absl::StatusOr<std::unique_ptr<ImageFolder>> ds = ImageFolder::Open(root);
  ASSERT_TRUE(ds.ok());
  EvalTransform t({.input_size = 32});
  Loader fail(ds->get(), &t, {.batch_size = 4});
  absl::StatusOr<Batch> failed = fail.GetBatch(0, 0);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr(root + "/a/1.jpg"));
  Loader skip(ds->get(), &t, {.batch_size = 4, .skip_corrupt = true});
  absl::StatusOr<Batch> skipped = skip.GetBatch(0, 0);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(skip.skipped(), 1);
  // Sample 1 was replaced by sample 2 (label 1, same eval pixels).
  EXPECT_EQ(skipped->labels[1].item<int64_t>(), 1);
  EXPECT_TRUE(skipped->images[1].equal(skipped->images[2]));
}

}  // namespace
}  // namespace convnextv2::data
