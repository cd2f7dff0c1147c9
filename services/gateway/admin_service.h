#pragma once
// GatewayAdmin: API keys and the audit log, for admins. Reached only
// through the gateway's own proxy, so it is authenticated, authorised,
// rate-limited and audited exactly like every other service.
//
// It runs inside the gateway process as a local backend of the proxy, not on
// a gRPC server of its own: every kind of gRPC server here brings threads
// that poll the proxy's sockets too (a sync service its sync-server threads,
// which took a fifth of the gateway's CPU; a callback service gRPC's
// "nexting" threads), and each event such a thread picks up must be handed
// to a proxy thread. The proxy passes the principal it has authenticated; no
// signature is needed where no process boundary is crossed. The handlers
// query the database, so they run on the service's own threads.

#include <string>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/principal.h"
#include <grpcpp/support/status.h>
#include "medkoord/gateway/v1/gateway.pb.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/blocking_workers.h"
#include "services/gateway/gateway_store.h"
#include "services/gateway/local_backend.h"

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

class AdminService final : public LocalBackend {
 public:
  AdminService(GatewayStore* store, Authenticator* authenticator, const Clock* clock, int threads = 2)
      : store_(store), authenticator_(authenticator), clock_(clock), workers_(threads) {}

  // LocalBackend: "gateway", the backend of medkoord.gateway.v1.
  std::string_view name() const override { return "gateway"; }
  void CallAsync(const std::string& method, const Principal& caller, const grpc::ByteBuffer& request,
                 Done done) override;

  // One call of `method` ("/medkoord.gateway.v1.GatewayAdmin/ListApiKeys")
  // with the serialized request; the serialized response in `response`.
  grpc::Status Call(const std::string& method, const Principal& caller, const std::string& request,
                    std::string* response);

  grpc::Status CreateApiKey(const Principal& caller, const v1::CreateApiKeyRequest& request,
                            v1::CreateApiKeyResponse* response);
  grpc::Status ListApiKeys(const Principal& caller, const v1::ListApiKeysRequest& request,
                           v1::ListApiKeysResponse* response);
  grpc::Status RevokeApiKey(const Principal& caller, const v1::RevokeApiKeyRequest& request, v1::ApiKey* response);
  grpc::Status ListAuditRecords(const Principal& caller, const v1::ListAuditRecordsRequest& request,
                                v1::ListAuditRecordsResponse* response);

 private:
  GatewayStore* store_;
  Authenticator* authenticator_;
  const Clock* clock_;
  // Last member: destroyed (joined) first, while what the handlers use lives.
  BlockingWorkers workers_;
};

}  // namespace medkoord::gateway
