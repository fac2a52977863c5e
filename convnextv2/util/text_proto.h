// Reading protobuf text format with errors that name the source, line and column.
//
//   RunManifest m;
//   absl::Status s = ParseTextProto(text, "/run/manifest.pbtxt", &m);
//   // InvalidArgument "/run/manifest.pbtxt:2:11: Expected integer, got: \"many\""
#ifndef CONVNEXTV2_UTIL_TEXT_PROTO_H_
#define CONVNEXTV2_UTIL_TEXT_PROTO_H_

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace convnextv2::util {

absl::Status ParseTextProto(absl::string_view text, absl::string_view source_name,
                            google::protobuf::Message* message);

}  // namespace convnextv2::util

#endif  // CONVNEXTV2_UTIL_TEXT_PROTO_H_
