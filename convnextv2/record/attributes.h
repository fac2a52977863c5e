// The root attributes of a metrics.h5 (the manifest's facts): strings, integers or doubles by
// name.
#ifndef CONVNEXTV2_RECORD_ATTRIBUTES_H_
#define CONVNEXTV2_RECORD_ATTRIBUTES_H_

#include <cstdint>
#include <map>
#include <string>
#include <variant>

namespace convnextv2::record {

using AttributeValue = std::variant<std::string, int64_t, double>;
using Attributes = std::map<std::string, AttributeValue>;

}  // namespace convnextv2::record

#endif  // CONVNEXTV2_RECORD_ATTRIBUTES_H_
