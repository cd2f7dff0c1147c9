#include "services/gateway/admin_service.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/page_token.h"
#include "common/server.h"
#include "common/status.h"
#include "services/gateway/api_key.h"
#include "services/gateway/audit_log.h"
#include "services/gateway/cert_map.h"

namespace medkoord::gateway {
namespace {

using v1::GatewayAdmin;

absl::Time TimeOf(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace

absl::StatusOr<IssuedApiKey> IssueApiKey(GatewayStore& store, const Principal& principal,
                                         const std::string& request_id, const std::string& created_by,
                                         const Clock& clock) {
  RETURN_IF_ERROR(ValidatePrincipal(principal));
  NewApiKey k;
  const std::string key = GenerateApiKey();
  k.key_id = GenerateKeyId();
  k.key_hash = HashApiKey(key);
  k.key_prefix = KeyPrefixOf(key);
  k.principal = principal;
  k.request_id = request_id;
  k.created_at = clock.Now();
  k.created_by = created_by;
  ASSIGN_OR_RETURN(GatewayStore::Created created, store.CreateApiKey(k));
  IssuedApiKey out;
  out.api_key = std::move(created.api_key);
  if (created.created) out.key = key;
  return out;
}

absl::StatusOr<Principal> AdminService::Admin(const grpc::ServerContextBase& context, const char* method) const {
  ASSIGN_OR_RETURN(Principal p, signer_->Verify(context, FullMethodName(GatewayAdmin::service_full_name(), method)));
  if (!HasRole(p, medkoord::common::v1::ROLE_ADMIN)) return absl::PermissionDeniedError("admin role required");
  return p;
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* AdminService::Serve(grpc::CallbackServerContext* context, const Request* request,
                                              Response* response,
                                              grpc::Status (AdminService::*handler)(const grpc::CallbackServerContext&,
                                                                                    const Request&, Response*)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Context, request and response live until Finish.
  workers_.Post([this, reactor, context, request, response, handler] {
    reactor->Finish((this->*handler)(*context, *request, response));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CreateApiKey(grpc::CallbackServerContext* context,
                                                     const v1::CreateApiKeyRequest* request,
                                                     v1::CreateApiKeyResponse* response) {
  return Serve(context, request, response, &AdminService::DoCreateApiKey);
}

grpc::ServerUnaryReactor* AdminService::ListApiKeys(grpc::CallbackServerContext* context,
                                                    const v1::ListApiKeysRequest* request,
                                                    v1::ListApiKeysResponse* response) {
  return Serve(context, request, response, &AdminService::DoListApiKeys);
}

grpc::ServerUnaryReactor* AdminService::RevokeApiKey(grpc::CallbackServerContext* context,
                                                     const v1::RevokeApiKeyRequest* request, v1::ApiKey* response) {
  return Serve(context, request, response, &AdminService::DoRevokeApiKey);
}

grpc::ServerUnaryReactor* AdminService::ListAuditRecords(grpc::CallbackServerContext* context,
                                                         const v1::ListAuditRecordsRequest* request,
                                                         v1::ListAuditRecordsResponse* response) {
  return Serve(context, request, response, &AdminService::DoListAuditRecords);
}

grpc::Status AdminService::DoCreateApiKey(const grpc::CallbackServerContext& context, const v1::CreateApiKeyRequest& request,
    v1::CreateApiKeyResponse* response) {
  auto admin = Admin(context, "CreateApiKey");
  if (!admin.ok()) return ToGrpcStatus(admin.status());
  const ApiKey& in = request.api_key();
  Principal p;
  p.set_id(in.principal_id());
  *p.mutable_roles() = in.roles();
  p.set_region(in.region());
  p.set_display_name(in.display_name());
  if (absl::Status s = ValidatePrincipal(p); !s.ok()) {
    FieldViolations v;
    for (const auto& [field, why] : FieldViolationsOf(s)) {
      v.Add(absl::StrCat("api_key.", field == "principal_id" ? "principal_id" : field), why);
    }
    return ToGrpcStatus(v.ToStatus());
  }
  auto issued = IssueApiKey(*store_, p, request.request_id(), admin->id(), *clock_);
  if (!issued.ok()) return ToGrpcStatus(issued.status());
  *response->mutable_api_key() = std::move(issued->api_key);
  response->set_key(std::move(issued->key));
  return grpc::Status::OK;
}

grpc::Status AdminService::DoListApiKeys(const grpc::CallbackServerContext& context, const v1::ListApiKeysRequest& request,
    v1::ListApiKeysResponse* response) {
  auto admin = Admin(context, "ListApiKeys");
  if (!admin.ok()) return ToGrpcStatus(admin.status());
  ApiKeyFilter filter{request.principal_id(), request.include_revoked()};
  const uint64_t hash = FilterHash(absl::StrCat(filter.principal_id, "|", filter.include_revoked));
  auto page = ParsePageRequest(request.page_size(), request.page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  int64_t after = 0;
  if (!page->after.empty() && !absl::SimpleAtoi(page->after[0], &after)) {
    return ToGrpcStatus(InvalidField("page_token", "is not a valid page token"));
  }
  std::vector<int64_t> seqs;
  auto keys = store_->ListApiKeys(filter, after, page->page_size + 1, &seqs);
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  const bool more = static_cast<int>(keys->size()) > page->page_size;
  if (more) keys->resize(page->page_size);
  for (auto& k : *keys) *response->add_api_keys() = std::move(k);
  if (more) response->set_next_page_token(EncodePageToken({std::to_string(seqs[page->page_size - 1])}, hash));
  return grpc::Status::OK;
}

grpc::Status AdminService::DoRevokeApiKey(const grpc::CallbackServerContext& context, const v1::RevokeApiKeyRequest& request,
    v1::ApiKey* response) {
  auto admin = Admin(context, "RevokeApiKey");
  if (!admin.ok()) return ToGrpcStatus(admin.status());
  absl::string_view id = request.name();
  if (!absl::ConsumePrefix(&id, "apiKeys/") || id.empty() || absl::StrContains(id, "/")) {
    return ToGrpcStatus(InvalidField("name", "must look like apiKeys/{key_id}"));
  }
  auto key = store_->RevokeApiKey(std::string_view(id.data(), id.size()), clock_->Now(), admin->id());
  if (!key.ok()) return ToGrpcStatus(key.status());
  authenticator_->Forget();
  *response = std::move(*key);
  return grpc::Status::OK;
}

grpc::Status AdminService::DoListAuditRecords(const grpc::CallbackServerContext& context, const v1::ListAuditRecordsRequest& request,
    v1::ListAuditRecordsResponse* response) {
  auto admin = Admin(context, "ListAuditRecords");
  if (!admin.ok()) return ToGrpcStatus(admin.status());
  FieldViolations v;
  AuditFilter f;
  f.principal_id = request.principal_id();
  f.method = request.method();
  f.resource = request.resource();
  for (int i = 0; i < request.status_names_size(); ++i) {
    const int code = StatusCodeFromName(request.status_names(i));
    if (code < 0) {
      v.Add(absl::StrCat("status_names[", i, "]"), "is not a gRPC status name such as OK or PERMISSION_DENIED");
    } else {
      f.status_codes.push_back(code);
    }
  }
  if (request.has_start_time()) f.start = TimeOf(request.start_time());
  if (request.has_end_time()) f.end = TimeOf(request.end_time());
  if (f.start && f.end && *f.end <= *f.start) v.Add("end_time", "must be after start_time");
  if (!v.empty()) return ToGrpcStatus(v.ToStatus());
  const uint64_t hash = FilterHash(absl::StrCat(f.principal_id, "|", f.method, "|", absl::StrJoin(f.status_codes, ","),
                                                "|", f.start ? absl::ToUnixMicros(*f.start) : 0, "|",
                                                f.end ? absl::ToUnixMicros(*f.end) : 0, "|", f.resource));
  auto page = ParsePageRequest(request.page_size(), request.page_token(), hash);
  if (!page.ok()) return ToGrpcStatus(page.status());
  int64_t before = 0;
  if (!page->after.empty() && !absl::SimpleAtoi(page->after[0], &before)) {
    return ToGrpcStatus(InvalidField("page_token", "is not a valid page token"));
  }
  auto records = store_->ListAuditRecords(f, before, page->page_size + 1);
  if (!records.ok()) return ToGrpcStatus(records.status());
  const bool more = static_cast<int>(records->size()) > page->page_size;
  if (more) records->resize(page->page_size);
  for (auto& r : *records) {
    r.set_status_name(StatusCodeName(r.status_code()));
    *response->add_audit_records() = std::move(r);
  }
  if (more) {
    response->set_next_page_token(
        EncodePageToken({std::to_string(response->audit_records(page->page_size - 1).id())}, hash));
  }
  return grpc::Status::OK;
}

}  // namespace medkoord::gateway
