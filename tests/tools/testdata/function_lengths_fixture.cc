// Input of function_lengths_test.sh: each definition's expected length is in its name or below.
#include <functional>
#include <string>

namespace fixture {
namespace {

// Braces in strings, characters and comments do not count: { { {
const char kBraces[] = "{{{ } \" {";
const char kOpen = '{';

constexpr int kTable[] = {
    1, 2, 3,
};

// A lambda at namespace scope is not a definition.
const auto kLambda = [](int x) {
  return x + 1;
};

}  // namespace

int FreeFunctionFive(int a,
                     int b) {
  int c = a + b;
  return c;
}

class Outer {
 public:
  Outer(int a, int b)
      : a_(a),
        b_{b} {
    a_ += 1;
  }

  // Defined inside the class: 7 lines.
  int MethodSeven(int x) const {
    auto twice = [](int y) {
      return 2 * y;
    };
    if (x > 0) { return twice(x); }
    return x;
  }

  int OneLine() const { return a_; }

  bool operator==(const Outer& other) const {
    return a_ == other.a_;
  }

  struct Inner {
    int MethodFour() {
      std::string s = "}";
      return 4;
    }
  };

 private:
  std::function<int()> member_lambda_ = [] {
    return 0;
  };
  int a_;
  int b_;
};

template <typename T>
class Holder {
 public:
  T TemplateMethodThree() {
    return T();
  }
};

enum class Colour : int {
  kRed,
};

int Outer2() {
  return 0;
}

}  // namespace fixture
