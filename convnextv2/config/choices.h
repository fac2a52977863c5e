// A string field with a fixed set of values and the enum the code reads it as: one table per
// field, which its validator checks with and the code that reads the value parses with, so no
// code compares the strings. The strings stay what files hold (configs, checkpoint headers).
//
//   enum class EvalWeights { kModel, kEma };
//   const Choices<EvalWeights>& kEvalWeights = *new Choices<EvalWeights>(
//       "eval.eval_weights", {{"model", EvalWeights::kModel}, {"ema", EvalWeights::kEma}});
//   kEvalWeights.Check(value, checks);   // "eval.eval_weights: 'x' is not one of: model, ema"
//                                        // (returns the enum, or nullopt after such an error)
//   EvalWeights w = kEvalWeights.Of(value);   // a value the validator accepted
//
// An entry named "" accepts the empty string; give `empty_means` to say what it stands for
// ("train.amp_dtype: 'x' is not one of: bfloat16, float16, or empty for automatic").
//
// No libtorch and no protobuf: the launcher and the checkpoint package use it too.
#ifndef CONVNEXTV2_CONFIG_CHOICES_H_
#define CONVNEXTV2_CONFIG_CHOICES_H_

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "convnextv2/config/checks.h"

namespace convnextv2::config {

template <typename Enum>
class Choices {
 public:
  struct Entry {
    absl::string_view name;
    Enum value;
  };

  // `field` names the field in errors ("eval.eval_weights", "header kind"); `empty_means` what
  // an entry named "" stands for in them ("automatic").
  Choices(absl::string_view field, std::initializer_list<Entry> entries,
          absl::string_view empty_means = "")
      : field_(field), entries_(entries), empty_means_(empty_means) {}

  // The enum of `value` (exact match); InvalidArgument "<field>: 'x' is not one of: a, b".
  absl::StatusOr<Enum> Parse(absl::string_view value) const {
    for (const Entry& e : entries_) {
      if (e.name == value) return e.value;
    }
    return absl::InvalidArgumentError(
        absl::StrCat(field_, ": '", value, "' is not one of: ", Names()));
  }

  // For a validator: records Parse's error; the enum when there was none, for checks that
  // depend on it.
  std::optional<Enum> Check(absl::string_view value, Checks& checks) const {
    absl::StatusOr<Enum> parsed = Parse(value);
    if (!parsed.ok()) {
      checks.Add(std::string(parsed.status().message()));
      return std::nullopt;
    }
    return *parsed;
  }

  // The enum of a value that passed Check (a programmer error otherwise).
  Enum Of(absl::string_view validated) const {
    absl::StatusOr<Enum> parsed = Parse(validated);
    if (!parsed.ok()) {
      std::fprintf(stderr, "unvalidated config value: %s\n",
                   std::string(parsed.status().message()).c_str());
      std::abort();
    }
    return *parsed;
  }

  // The string files hold for `value`.
  absl::string_view Name(Enum value) const {
    for (const Entry& e : entries_) {
      if (e.value == value) return e.name;
    }
    std::fprintf(stderr, "%s: an enum value without a name\n", field_.c_str());
    std::abort();
  }

  // "a, b, c", in table order; an entry named "" last, as "or empty for <empty_means>".
  std::string Names() const {
    std::vector<absl::string_view> named;
    bool empty = false;
    for (const Entry& e : entries_) {
      if (e.name.empty()) {
        empty = true;
      } else {
        named.push_back(e.name);
      }
    }
    std::string out = absl::StrJoin(named, ", ");
    if (empty) absl::StrAppend(&out, ", or empty for ", empty_means_);
    return out;
  }

 private:
  std::string field_;
  std::vector<Entry> entries_;
  std::string empty_means_;
};

}  // namespace convnextv2::config

#endif  // CONVNEXTV2_CONFIG_CHOICES_H_
