// Early returns for absl::Status and absl::StatusOr<T>, so that error paths stay one line.
//
//   absl::Status Train(const ExperimentConfig& config) {
//     CONVNEXTV2_RETURN_IF_ERROR(util::MakeDirs(dir));            // an absl::Status
//     CONVNEXTV2_RETURN_IF_ERROR(loaded);                         // or an absl::StatusOr<T>
//     CONVNEXTV2_ASSIGN_OR_RETURN(Runtime runtime, SetUpRuntime(config));
//     CONVNEXTV2_ASSIGN_OR_RETURN(auto dataset, data::OpenDataset(config, split));
//     ...
//   }
//
// The enclosing function returns absl::Status or any absl::StatusOr<U>; the error is returned
// unchanged. Every name here (helpers and temporaries too) carries the project prefix, so these
// never clash with the RETURN_IF_ERROR / ASSIGN_OR_RETURN of protobuf's stubs, Abseil's
// internals or other libraries. The left side of ASSIGN_OR_RETURN may not contain a comma
// outside parentheses (wrap a std::pair<A, B> in a `using`). ASSIGN_OR_RETURN expands to several
// statements: put braces around it under an `if`.
#ifndef CONVNEXTV2_UTIL_STATUS_MACROS_H_
#define CONVNEXTV2_UTIL_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace convnextv2::util::status_macros_internal {

inline const absl::Status& AsStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace convnextv2::util::status_macros_internal

// Evaluates `expr` (absl::Status or absl::StatusOr<T>) once; returns its status if not OK.
#define CONVNEXTV2_RETURN_IF_ERROR(expr)                                                    \
  do {                                                                                      \
    if (const auto& convnextv2_status_macros_value = (expr);                                \
        !convnextv2_status_macros_value.ok()) {                                             \
      return ::convnextv2::util::status_macros_internal::AsStatus(                          \
          convnextv2_status_macros_value);                                                  \
    }                                                                                       \
  } while (false)

// Evaluates `expr` (an absl::StatusOr<T>); returns its status if not OK, else moves the value
// into `lhs`, which may declare a variable ("Foo foo", "auto foo") or name an existing one.
#define CONVNEXTV2_ASSIGN_OR_RETURN(lhs, expr)                                              \
  CONVNEXTV2_STATUS_MACROS_ASSIGN_OR_RETURN_IMPL_(                                          \
      CONVNEXTV2_STATUS_MACROS_CONCAT_(convnextv2_status_macros_or_, __LINE__), lhs, expr)

#define CONVNEXTV2_STATUS_MACROS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                                    \
  if (!statusor.ok()) return std::move(statusor).status();                   \
  lhs = std::move(statusor).value()

#define CONVNEXTV2_STATUS_MACROS_CONCAT_(x, y) CONVNEXTV2_STATUS_MACROS_CONCAT_INNER_(x, y)
#define CONVNEXTV2_STATUS_MACROS_CONCAT_INNER_(x, y) x##y

#endif  // CONVNEXTV2_UTIL_STATUS_MACROS_H_
