#pragma once
// GatewayAdmin: API keys and the audit log, for admins. Served on an
// in-process server behind the gateway's own proxy, so it is authenticated,
// authorised, rate-limited and audited exactly like every other service, and
// it verifies the signed principal like every other service.

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/principal.h"
#include "medkoord/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/gateway_store.h"

namespace medkoord::gateway {

struct IssuedApiKey {
  ApiKey api_key;
  std::string key;  // empty when a repeated request_id returned the first key
};

// Validates `principal` and stores a new key for it. Shared by CreateApiKey
// and the `--create_api_key` bootstrap.
absl::StatusOr<IssuedApiKey> IssueApiKey(GatewayStore& store, const Principal& principal,
                                         const std::string& request_id, const std::string& created_by,
                                         const Clock& clock);

class AdminService final : public medkoord::gateway::v1::GatewayAdmin::Service {
 public:
  AdminService(GatewayStore* store, Authenticator* authenticator, const PrincipalSigner* signer, const Clock* clock)
      : store_(store), authenticator_(authenticator), signer_(signer), clock_(clock) {}

  grpc::Status CreateApiKey(grpc::ServerContext* context, const v1::CreateApiKeyRequest* request,
                            v1::CreateApiKeyResponse* response) override;
  grpc::Status ListApiKeys(grpc::ServerContext* context, const v1::ListApiKeysRequest* request,
                           v1::ListApiKeysResponse* response) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* context, const v1::RevokeApiKeyRequest* request,
                            v1::ApiKey* response) override;
  grpc::Status ListAuditRecords(grpc::ServerContext* context, const v1::ListAuditRecordsRequest* request,
                                v1::ListAuditRecordsResponse* response) override;

 private:
  absl::StatusOr<Principal> Admin(const grpc::ServerContext& context, const char* method) const;

  GatewayStore* store_;
  Authenticator* authenticator_;
  const PrincipalSigner* signer_;
  const Clock* clock_;
};

}  // namespace medkoord::gateway
