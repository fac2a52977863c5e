#include "convnextv2/data/class_names.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "convnextv2/data/imagenet_classes.h"

namespace convnextv2::data {

std::vector<std::string> NumberedClassNames(int n) {
  std::vector<std::string> names;
  names.reserve(n);
  for (int i = 0; i < n; ++i) names.push_back(absl::StrCat("class_", i));
  return names;
}

const std::vector<std::string>& ImageNet1kClassNames() {
  static const auto* names = new std::vector<std::string>(absl::StrSplit(
      EmbeddedClassList("imagenet_classes.txt"), '\n', absl::SkipEmpty()));
  return *names;
}

const std::vector<std::string>& FashionMnistClassNames() {
  static const auto* names = new std::vector<std::string>{
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return *names;
}

const std::vector<std::string>& Cifar10ClassNames() {
  static const auto* names = new std::vector<std::string>{
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return *names;
}

const std::vector<std::string>& Cifar100ClassNames() {
  static const auto* names = new std::vector<std::string>(absl::StrSplit(
      "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
      "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
      "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house "
      "kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle "
      "mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
      "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal "
      "shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower "
      "sweet_pepper table tank telephone television tiger tractor train trout tulip turtle "
      "wardrobe whale willow_tree wolf woman worm",
      ' '));
  return *names;
}

}  // namespace convnextv2::data
