#pragma once
// One error path: absl::Status inside the services, grpc::Status at the RPC
// edge. Field violations travel as a google.rpc.BadRequest payload on the
// absl::Status and are packed into `grpc-status-details-bin` by ToGrpcStatus.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace medkoord {

// The payload type URLs under which details are attached to an absl::Status.
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";
inline constexpr char kRetryInfoTypeUrl[] = "type.googleapis.com/google.rpc.RetryInfo";

// Collects every offending field of a request, then turns them into one
// INVALID_ARGUMENT. Field paths follow AIP-193: `application.atc_code`,
// `rows[17].index_date`.
class FieldViolations {
 public:
  void Add(std::string field, std::string description);
  bool empty() const { return violations_.empty(); }
  size_t size() const { return violations_.size(); }
  const std::vector<std::pair<std::string, std::string>>& violations() const { return violations_; }

  // OK when empty, else INVALID_ARGUMENT whose message lists every violation
  // ("application.atc_code: must be ...; application.region: ...") and whose
  // payload is a google.rpc.BadRequest.
  absl::Status ToStatus() const;

 private:
  std::vector<std::pair<std::string, std::string>> violations_;
};

// INVALID_ARGUMENT naming one field.
absl::Status InvalidField(std::string field, std::string description);

// RESOURCE_EXHAUSTED carrying a google.rpc.RetryInfo.
absl::Status ResourceExhaustedRetryAfter(std::string message, absl::Duration retry_after);

// The field violations carried by a status (empty if none).
std::vector<std::pair<std::string, std::string>> FieldViolationsOf(const absl::Status& status);

// "PERMISSION_DENIED" for 7, and back (-1 for an unknown name): the
// canonical names, for logs, metrics labels and the audit log.
const char* StatusCodeName(int code);
int StatusCodeFromName(std::string_view name);

// absl::Status -> grpc::Status, with google.rpc.Status details (BadRequest,
// RetryInfo) in the binary error details.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, keeping the details as payloads. For clients
// of other services (the outbox relay, the gateway's own calls).
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace medkoord

// Abseil in Debian 12 has no status macros; these are ours.
#define MEDKOORD_CONCAT_INNER_(a, b) a##b
#define MEDKOORD_CONCAT_(a, b) MEDKOORD_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::absl::Status medkoord_status_ = (expr);     \
    if (!medkoord_status_.ok()) return medkoord_status_; \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  MEDKOORD_ASSIGN_OR_RETURN_IMPL_(MEDKOORD_CONCAT_(medkoord_statusor_, __LINE__), lhs, expr)

#define MEDKOORD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()
