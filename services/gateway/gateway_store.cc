#include "services/gateway/gateway_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace medkoord::gateway {
namespace {

constexpr char kKeyColumns[] =
    "seq, key_id, key_prefix, principal_id, roles, region, display_name, "
    "(extract(epoch from created_at) * 1000000)::bigint, created_by, "
    "coalesce((extract(epoch from revoked_at) * 1000000)::bigint, 0)";

// Microseconds since the epoch as an exact timestamptz expression.
std::string MicrosToTimestamp(const std::string& param) {
  return absl::StrCat("('epoch'::timestamptz + ", param, "::bigint * interval '1 microsecond')");
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

void SetTimestamp(int64_t micros, google::protobuf::Timestamp* ts) {
  ts->set_seconds(micros / 1000000);
  ts->set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
}

std::string RolesText(const Principal& p) {
  std::vector<std::string> names;
  for (int r : p.roles()) names.emplace_back(RoleName(static_cast<Role>(r)));
  return absl::StrJoin(names, ",");
}

ApiKey KeyFromRow(const pqxx::row& row, int64_t* seq) {
  ApiKey key;
  if (seq != nullptr) *seq = row[0].as<int64_t>();
  key.set_name(absl::StrCat("apiKeys/", row[1].as<std::string>()));
  key.set_key_prefix(row[2].as<std::string>());
  key.set_principal_id(row[3].as<std::string>());
  for (absl::string_view name : absl::StrSplit(row[4].as<std::string>(), ',', absl::SkipEmpty())) {
    if (auto role = RoleFromName(std::string(name))) key.add_roles(*role);
  }
  if (auto region = RegionFromSlug(row[5].as<std::string>())) key.set_region(*region);
  key.set_display_name(row[6].as<std::string>());
  SetTimestamp(row[7].as<int64_t>(), key.mutable_create_time());
  key.mutable_created_by()->set_principal_id(row[8].as<std::string>());
  *key.mutable_created_by()->mutable_time() = key.create_time();
  if (const int64_t revoked = row[9].as<int64_t>(); revoked != 0) SetTimestamp(revoked, key.mutable_revoke_time());
  return key;
}

}  // namespace

void GatewayStore::Prepare(pqxx::connection& c) {
  c.prepare("gw_insert_key",
            absl::StrCat("INSERT INTO api_keys (key_id, key_hash, key_prefix, principal_id, roles, region, "
                         "display_name, request_id, created_at, created_by) "
                         "VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), ",
                         MicrosToTimestamp("$9"), ", $10) ON CONFLICT (request_id) DO NOTHING RETURNING ",
                         kKeyColumns));
  c.prepare("gw_key_by_request", absl::StrCat("SELECT ", kKeyColumns, " FROM api_keys WHERE request_id = $1"));
  c.prepare("gw_find_active_key",
            "SELECT principal_id, roles, region, display_name FROM api_keys "
            "WHERE key_hash = $1 AND revoked_at IS NULL");
  c.prepare("gw_list_keys",
            absl::StrCat("SELECT ", kKeyColumns,
                         " FROM api_keys WHERE ($1 = '' OR principal_id = $1) AND ($2 OR revoked_at IS NULL) "
                         "AND ($3::bigint = 0 OR seq < $3::bigint) ORDER BY seq DESC LIMIT $4"));
  c.prepare("gw_revoke_key",
            absl::StrCat("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ", MicrosToTimestamp("$2"),
                         "), revoked_by = coalesce(revoked_by, $3) WHERE key_id = $1 RETURNING ", kKeyColumns));
  c.prepare("gw_list_audit",
            "SELECT id, (extract(epoch from at) * 1000000)::bigint, principal_id, method, resource, "
            "status_code, latency_us, request_id, peer FROM audit_log "
            "WHERE ($1::bigint = 0 OR id < $1::bigint) "
            "AND ($2 = '' OR principal_id = $2) "
            "AND ($3 = '' OR method = $3 OR (right($3, 1) = '/' AND starts_with(method, $3))) "
            "AND ($4 = '' OR status_code = ANY(string_to_array($4, ',')::smallint[])) "
            "AND ($5::bigint = 0 OR at >= 'epoch'::timestamptz + $5::bigint * interval '1 microsecond') "
            "AND ($6::bigint = 0 OR at < 'epoch'::timestamptz + $6::bigint * interval '1 microsecond') "
            "AND ($7 = '' OR resource = $7) "
            "ORDER BY id DESC LIMIT $8");
}

absl::StatusOr<GatewayStore::Created> GatewayStore::CreateApiKey(const NewApiKey& k) {
  Created out;
  RETURN_IF_ERROR(pool_->Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("gw_insert_key", k.key_id, k.key_hash, k.key_prefix, k.principal.id(),
                                      RolesText(k.principal), std::string(RegionSlug(k.principal.region())),
                                      k.principal.display_name(), k.request_id, Micros(k.created_at),
                                      k.created_by);
    if (!r.empty()) {
      out.api_key = KeyFromRow(r[0], nullptr);
      out.created = true;
      return absl::OkStatus();
    }
    r = tx.exec_prepared("gw_key_by_request", k.request_id);
    if (r.empty()) return absl::AbortedError("api key request id conflict; retry");
    out.api_key = KeyFromRow(r[0], nullptr);
    out.created = false;
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<Principal>> GatewayStore::FindActiveKey(std::string_view key_hash) {
  std::optional<Principal> out;
  RETURN_IF_ERROR(pool_->Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("gw_find_active_key", std::string(key_hash));
    if (r.empty()) return absl::OkStatus();
    Principal p;
    p.set_id(r[0][0].as<std::string>());
    for (absl::string_view name : absl::StrSplit(r[0][1].as<std::string>(), ',', absl::SkipEmpty())) {
      if (auto role = RoleFromName(std::string(name))) p.add_roles(*role);
    }
    if (auto region = RegionFromSlug(r[0][2].as<std::string>())) p.set_region(*region);
    p.set_display_name(r[0][3].as<std::string>());
    out = std::move(p);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<ApiKey>> GatewayStore::ListApiKeys(const ApiKeyFilter& filter, int64_t after_seq,
                                                              int limit, std::vector<int64_t>* seqs) {
  std::vector<ApiKey> out;
  RETURN_IF_ERROR(pool_->Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("gw_list_keys", filter.principal_id, filter.include_revoked, after_seq, limit);
    for (const auto& row : r) {
      int64_t seq = 0;
      out.push_back(KeyFromRow(row, &seq));
      if (seqs != nullptr) seqs->push_back(seq);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<ApiKey> GatewayStore::RevokeApiKey(std::string_view key_id, absl::Time at, std::string_view by) {
  ApiKey out;
  RETURN_IF_ERROR(pool_->Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("gw_revoke_key", std::string(key_id), Micros(at), std::string(by));
    if (r.empty()) return absl::NotFoundError(absl::StrCat("apiKeys/", std::string(key_id), " not found"));
    out = KeyFromRow(r[0], nullptr);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status GatewayStore::InsertAuditRecords(const std::vector<AuditRecord>& records) {
  if (records.empty()) return absl::OkStatus();
  return pool_->Run([&](pqxx::work& tx) -> absl::Status {
    // One multi-row INSERT per batch: a single round trip and commit for
    // hundreds of records, which keeps auditing off the critical path.
    std::string sql =
        "INSERT INTO audit_log (at, principal_id, method, resource, status_code, latency_us, request_id, peer) "
        "VALUES ";
    for (size_t i = 0; i < records.size(); ++i) {
      const AuditRecord& a = records[i];
      const int64_t micros = a.time().seconds() * 1000000 + a.time().nanos() / 1000;
      absl::StrAppend(&sql, i == 0 ? "" : ",", "(", MicrosToTimestamp(std::to_string(micros)), ",",
                      tx.quote(a.principal_id()), ",", tx.quote(a.method()), ",", tx.quote(a.resource()), ",",
                      a.status_code(), ",", a.latency_us(), ",", tx.quote(a.request_id()), ",",
                      tx.quote(a.peer()), ")");
    }
    tx.exec0(sql);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<AuditRecord>> GatewayStore::ListAuditRecords(const AuditFilter& f, int64_t before_id,
                                                                        int limit) {
  std::vector<AuditRecord> out;
  RETURN_IF_ERROR(pool_->Run([&](pqxx::work& tx) -> absl::Status {
    pqxx::result r = tx.exec_prepared("gw_list_audit", before_id, f.principal_id, f.method,
                                      absl::StrJoin(f.status_codes, ","), f.start ? Micros(*f.start) : int64_t{0},
                                      f.end ? Micros(*f.end) : int64_t{0}, f.resource, limit);
    for (const auto& row : r) {
      AuditRecord a;
      a.set_id(row[0].as<int64_t>());
      SetTimestamp(row[1].as<int64_t>(), a.mutable_time());
      a.set_principal_id(row[2].as<std::string>());
      a.set_method(row[3].as<std::string>());
      a.set_resource(row[4].as<std::string>());
      a.set_status_code(row[5].as<int>());
      a.set_latency_us(row[6].as<int64_t>());
      a.set_request_id(row[7].as<std::string>());
      a.set_peer(row[8].as<std::string>());
      out.push_back(std::move(a));
    }
    return absl::OkStatus();
  }));
  return out;
}

}  // namespace medkoord::gateway
