// Class names, index = label: what a fine-tuning run records in its manifest and checkpoints so
// that `predict` can say "sneaker" instead of "7".
//
//   std::vector<std::string> names = dataset.class_names();      // ImageFolder: folder names
//   const std::vector<std::string>& in1k = ImageNet1kClassNames();  // in1k[0] == "tench"
#ifndef CONVNEXTV2_DATA_CLASS_NAMES_H_
#define CONVNEXTV2_DATA_CLASS_NAMES_H_

#include <string>
#include <vector>

namespace convnextv2::data {

// "class_0" ... "class_<n-1>": for datasets without names (synthetic).
std::vector<std::string> NumberedClassNames(int n);

// The 1000 ImageNet-1k classes in label order (torchvision's list: "tench", "goldfish", ...),
// shipped as convnextv2/data/imagenet_classes.txt: the names of official and other pre-trained
// weights with a 1000-class head.
const std::vector<std::string>& ImageNet1kClassNames();

// The official names of Fashion-MNIST ("T-shirt/top" ... "Ankle boot"), CIFAR-10 ("airplane" ...)
// and CIFAR-100 (the 100 fine labels, "apple" ... "worm"), in label order.
const std::vector<std::string>& FashionMnistClassNames();
const std::vector<std::string>& Cifar10ClassNames();
const std::vector<std::string>& Cifar100ClassNames();

}  // namespace convnextv2::data

#endif  // CONVNEXTV2_DATA_CLASS_NAMES_H_
