#pragma once
// GatewayAdmin: API keys and the audit log, for admins. Served on an
// in-process server behind the gateway's own proxy, so it is authenticated,
// authorised, rate-limited and audited exactly like every other service, and
// it verifies the signed principal like every other service.
//
// It is a callback service, so that no server in the gateway process has a
// synchronous method: gRPC's sync-server threads poll the same sockets as the
// proxy's callback threads and took a fifth of the gateway's CPU. The
// handlers query the database, so they run on the service's own threads.

#include <string>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/principal.h"
#include "medkoord/gateway/v1/gateway.grpc.pb.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/blocking_workers.h"
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

class AdminService final : public medkoord::gateway::v1::GatewayAdmin::CallbackService {
 public:
  AdminService(GatewayStore* store, Authenticator* authenticator, const PrincipalSigner* signer, const Clock* clock,
               int threads = 2)
      : store_(store), authenticator_(authenticator), signer_(signer), clock_(clock), workers_(threads) {}

  grpc::ServerUnaryReactor* CreateApiKey(grpc::CallbackServerContext* context, const v1::CreateApiKeyRequest* request,
                                         v1::CreateApiKeyResponse* response) override;
  grpc::ServerUnaryReactor* ListApiKeys(grpc::CallbackServerContext* context, const v1::ListApiKeysRequest* request,
                                        v1::ListApiKeysResponse* response) override;
  grpc::ServerUnaryReactor* RevokeApiKey(grpc::CallbackServerContext* context, const v1::RevokeApiKeyRequest* request,
                                         v1::ApiKey* response) override;
  grpc::ServerUnaryReactor* ListAuditRecords(grpc::CallbackServerContext* context,
                                             const v1::ListAuditRecordsRequest* request,
                                             v1::ListAuditRecordsResponse* response) override;

 private:
  // Runs `handler` on a worker thread and finishes the call with its status.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, const Request* request, Response* response,
                                  grpc::Status (AdminService::*handler)(const grpc::CallbackServerContext&,
                                                                        const Request&, Response*));

  grpc::Status DoCreateApiKey(const grpc::CallbackServerContext& context, const v1::CreateApiKeyRequest& request,
                              v1::CreateApiKeyResponse* response);
  grpc::Status DoListApiKeys(const grpc::CallbackServerContext& context, const v1::ListApiKeysRequest& request,
                             v1::ListApiKeysResponse* response);
  grpc::Status DoRevokeApiKey(const grpc::CallbackServerContext& context, const v1::RevokeApiKeyRequest& request,
                              v1::ApiKey* response);
  grpc::Status DoListAuditRecords(const grpc::CallbackServerContext& context,
                                  const v1::ListAuditRecordsRequest& request, v1::ListAuditRecordsResponse* response);

  absl::StatusOr<Principal> Admin(const grpc::ServerContextBase& context, const char* method) const;

  GatewayStore* store_;
  Authenticator* authenticator_;
  const PrincipalSigner* signer_;
  const Clock* clock_;
  // Last member: destroyed (joined) first, while what the handlers use lives.
  BlockingWorkers workers_;
};

}  // namespace medkoord::gateway
