// protobuf's and Abseil's headers come first: if either defined a macro of the same name, the
// redefinition in status_macros.h would be an error (and ours would be redefined if it came
// first).
#include <google/protobuf/message.h>
#include <google/protobuf/stubs/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "convnextv2/util/status_macros.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace convnextv2::util {
namespace {

int calls = 0;

absl::Status Counted(absl::Status s) {
  ++calls;
  return s;
}

absl::StatusOr<int> CountedOr(absl::StatusOr<int> v) {
  ++calls;
  return v;
}

absl::Status ReturnIfError(absl::Status first, int* reached) {
  CONVNEXTV2_RETURN_IF_ERROR(Counted(first));
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReturnIfErrorOfStatusOr(absl::StatusOr<int> v) {
  CONVNEXTV2_RETURN_IF_ERROR(CountedOr(v));
  return std::to_string(*v);
}

absl::StatusOr<int> AssignOrReturn(absl::StatusOr<int> a, absl::StatusOr<int> b) {
  CONVNEXTV2_ASSIGN_OR_RETURN(int x, CountedOr(a));
  CONVNEXTV2_ASSIGN_OR_RETURN(const int y, CountedOr(b));  // two on consecutive lines
  return x * 10 + y;
}

absl::Status AssignExisting(absl::StatusOr<std::unique_ptr<int>> in, int* out) {
  std::unique_ptr<int> p;
  CONVNEXTV2_ASSIGN_OR_RETURN(p, std::move(in));  // move-only values move through
  *out = *p;
  return absl::OkStatus();
}

TEST(StatusMacros, ReturnIfErrorPassesOkAndReturnsTheErrorUnchanged) {
  calls = 0;
  int reached = 0;
  EXPECT_TRUE(ReturnIfError(absl::OkStatus(), &reached).ok());
  EXPECT_EQ(reached, 1);
  reached = 0;
  const absl::Status s = ReturnIfError(absl::NotFoundError("no such file: x.pbtxt"), &reached);
  EXPECT_EQ(s, absl::NotFoundError("no such file: x.pbtxt"));
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(calls, 2);  // the expression ran once per call
}

TEST(StatusMacros, ReturnIfErrorAcceptsStatusOr) {
  calls = 0;
  EXPECT_EQ(*ReturnIfErrorOfStatusOr(7), "7");
  const absl::StatusOr<std::string> r =
      ReturnIfErrorOfStatusOr(absl::InvalidArgumentError("train.epochs: -1"));
  EXPECT_EQ(r.status(), absl::InvalidArgumentError("train.epochs: -1"));
  EXPECT_EQ(calls, 2);
}

TEST(StatusMacros, AssignOrReturn) {
  calls = 0;
  EXPECT_EQ(*AssignOrReturn(3, 4), 34);
  EXPECT_EQ(calls, 2);
  calls = 0;
  EXPECT_EQ(AssignOrReturn(absl::DataLossError("a"), 4).status(), absl::DataLossError("a"));
  EXPECT_EQ(calls, 1);  // stopped at the first error
  EXPECT_EQ(AssignOrReturn(3, absl::DataLossError("b")).status(), absl::DataLossError("b"));
}

TEST(StatusMacros, AssignOrReturnIntoAnExistingVariable) {
  int out = 0;
  EXPECT_TRUE(AssignExisting(std::make_unique<int>(5), &out).ok());
  EXPECT_EQ(out, 5);
  EXPECT_EQ(AssignExisting(absl::UnavailableError("c"), &out), absl::UnavailableError("c"));
}

}  // namespace
}  // namespace convnextv2::util
