#pragma once
// All SQL of the gateway: API keys (hashes only) and the audit log.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "medkoord/gateway/v1/gateway.pb.h"

namespace medkoord::gateway {

using ApiKey = medkoord::gateway::v1::ApiKey;
using AuditRecord = medkoord::gateway::v1::AuditRecord;

struct NewApiKey {
  std::string key_id;
  std::string key_hash;
  std::string key_prefix;
  Principal principal;
  std::string request_id;  // may be empty
  absl::Time created_at;
  std::string created_by;
};

struct ApiKeyFilter {
  std::string principal_id;
  bool include_revoked = false;
};

struct AuditFilter {
  std::string principal_id;
  std::string method;               // exact, or a prefix ending in "/"
  std::vector<int> status_codes;    // any of them; empty: all
  std::optional<absl::Time> start;  // inclusive
  std::optional<absl::Time> end;    // exclusive
  std::string resource;
};

class GatewayStore {
 public:
  explicit GatewayStore(db::Pool* pool) : pool_(pool) {}
  static void Prepare(pqxx::connection& c);

  // Creates the key; with a request_id already used, returns the first key
  // (and `created` false) instead.
  struct Created {
    ApiKey api_key;
    bool created = true;
  };
  absl::StatusOr<Created> CreateApiKey(const NewApiKey& key);
  // The principal of an active (not revoked) key with this hash, if any.
  absl::StatusOr<std::optional<Principal>> FindActiveKey(std::string_view key_hash);
  // Newest first, after the key with sequence `after_seq` (0: from the start);
  // `seqs` receives each returned key's sequence for the page cursor.
  absl::StatusOr<std::vector<ApiKey>> ListApiKeys(const ApiKeyFilter& filter, int64_t after_seq, int limit,
                                                  std::vector<int64_t>* seqs);
  absl::StatusOr<ApiKey> RevokeApiKey(std::string_view key_id, absl::Time at, std::string_view by);

  absl::Status InsertAuditRecords(const std::vector<AuditRecord>& records);
  // Newest first, ids below `before_id` (0: from the newest).
  absl::StatusOr<std::vector<AuditRecord>> ListAuditRecords(const AuditFilter& filter, int64_t before_id, int limit);

 private:
  db::Pool* pool_;
};

}  // namespace medkoord::gateway
