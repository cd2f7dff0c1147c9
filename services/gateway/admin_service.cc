#include "services/gateway/admin_service.h"

#include "medkoord/gateway/v1/gateway.grpc.pb.h"

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
#include "services/gateway/server_reflection.h"

namespace medkoord::gateway {
namespace {


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

namespace {

using v1::GatewayAdmin;

// The role table lets only admins call GatewayAdmin; checked here again, as
// each service checks its own rules.
grpc::Status RequireAdmin(const Principal& caller) {
  if (HasRole(caller, medkoord::common::v1::ROLE_ADMIN)) return grpc::Status::OK;
  return ToGrpcStatus(absl::PermissionDeniedError("admin role required"));
}

template <typename Request, typename Response>
grpc::Status Run(AdminService* service,
                 grpc::Status (AdminService::*handler)(const Principal&, const Request&, Response*),
                 const Principal& caller, const std::string& request_bytes, std::string* response_bytes) {
  Request request;
  if (!request.ParseFromString(request_bytes)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request does not parse");
  }
  Response response;
  grpc::Status status = (service->*handler)(caller, request, &response);
  if (status.ok()) response.SerializeToString(response_bytes);
  return status;
}

}  // namespace

grpc::Status AdminService::Call(const std::string& method, const Principal& caller, const std::string& request,
                                std::string* response) {
  if (grpc::Status s = RequireAdmin(caller); !s.ok()) return s;
  const std::string_view name = std::string_view(method).substr(method.rfind('/') + 1);
  if (method != FullMethodName(GatewayAdmin::service_full_name(), name)) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + method);
  }
  if (name == "CreateApiKey") return Run(this, &AdminService::CreateApiKey, caller, request, response);
  if (name == "ListApiKeys") return Run(this, &AdminService::ListApiKeys, caller, request, response);
  if (name == "RevokeApiKey") return Run(this, &AdminService::RevokeApiKey, caller, request, response);
  if (name == "ListAuditRecords") return Run(this, &AdminService::ListAuditRecords, caller, request, response);
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method " + method);
}

void AdminService::CallAsync(const std::string& method, const Principal& caller, const grpc::ByteBuffer& request,
                             Done done) {
  workers_.Post([this, method, caller, request = BytesOf(request), done = std::move(done)] {
    std::string response;
    grpc::Status status = Call(method, caller, request, &response);
    done(std::move(status), std::move(response));
  });
}

grpc::Status AdminService::CreateApiKey(const Principal& caller, const v1::CreateApiKeyRequest& request,
    v1::CreateApiKeyResponse* response) {
  if (grpc::Status s = RequireAdmin(caller); !s.ok()) return s;
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
  auto issued = IssueApiKey(*store_, p, request.request_id(), caller.id(), *clock_);
  if (!issued.ok()) return ToGrpcStatus(issued.status());
  *response->mutable_api_key() = std::move(issued->api_key);
  response->set_key(std::move(issued->key));
  return grpc::Status::OK;
}

grpc::Status AdminService::ListApiKeys(const Principal& caller, const v1::ListApiKeysRequest& request,
    v1::ListApiKeysResponse* response) {
  if (grpc::Status s = RequireAdmin(caller); !s.ok()) return s;
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

grpc::Status AdminService::RevokeApiKey(const Principal& caller, const v1::RevokeApiKeyRequest& request,
    v1::ApiKey* response) {
  if (grpc::Status s = RequireAdmin(caller); !s.ok()) return s;
  absl::string_view id = request.name();
  if (!absl::ConsumePrefix(&id, "apiKeys/") || id.empty() || absl::StrContains(id, "/")) {
    return ToGrpcStatus(InvalidField("name", "must look like apiKeys/{key_id}"));
  }
  auto key = store_->RevokeApiKey(std::string_view(id.data(), id.size()), clock_->Now(), caller.id());
  if (!key.ok()) return ToGrpcStatus(key.status());
  authenticator_->Forget();
  *response = std::move(*key);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListAuditRecords(const Principal& caller, const v1::ListAuditRecordsRequest& request,
    v1::ListAuditRecordsResponse* response) {
  if (grpc::Status s = RequireAdmin(caller); !s.ok()) return s;
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
