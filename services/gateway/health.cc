#include "services/gateway/health.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/strings/str_cat.h"

namespace medkoord::gateway {

absl::StatusOr<std::string> HealthService::Check(std::string_view request) const {
  namespace pb = google::protobuf;
  using pb::internal::WireFormatLite;
  // HealthCheckRequest { string service = 1; }
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(request.data()), static_cast<int>(request.size()));
  std::string service;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length) || !in.ReadString(&service, static_cast<int>(length))) break;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      break;
    }
  }
  if (!in.ConsumedEntireMessage()) return absl::InvalidArgumentError("health check request does not parse");
  if (!service.empty()) return absl::NotFoundError(absl::StrCat("unknown service ", service));
  // HealthCheckResponse { ServingStatus status = 1; } SERVING = 1, NOT_SERVING = 2.
  return std::string{static_cast<char>(WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)),
                     static_cast<char>(serving() ? 1 : 2)};
}

}  // namespace medkoord::gateway
