#include "common/db/migrations.h"

#include <openssl/sha.h>

#include <map>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace medkoord::db {
namespace {

// One advisory-lock key for every service's migrations: each service has its
// own database, and the lock is per database.
constexpr int64_t kMigrationLockKey = 0x6d65646b6f6f7264;  // "medkoord"

std::string Checksum(const std::string& sql) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(sql.data()), sql.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), SHA256_DIGEST_LENGTH));
}

absl::Status CheckList(const std::vector<Migration>& migrations) {
  int previous = 0;
  for (const auto& m : migrations) {
    if (m.version <= previous) {
      return absl::InvalidArgumentError(absl::StrCat("migrations: version ", m.version, " (", m.name,
                                                     ") is not greater than ", previous));
    }
    previous = m.version;
  }
  return absl::OkStatus();
}

struct Applied {
  std::string name;
  std::string checksum;
};

// Refuses a database that a different binary migrated.
absl::Status CheckHistory(const std::map<int, Applied>& applied, const std::vector<Migration>& migrations) {
  std::map<int, const Migration*> known;
  for (const auto& m : migrations) known[m.version] = &m;
  for (const auto& [version, row] : applied) {
    auto it = known.find(version);
    if (it == known.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrations: the database has migration ", version, " (", row.name,
          ") which this binary does not know; a newer version of the service migrated it"));
    }
    if (Checksum(it->second->sql) != row.checksum) {
      return absl::FailedPreconditionError(absl::StrCat("migrations: ", version, " (", row.name,
                                                        ") was changed after it was applied; "
                                                        "migrations are forward-only, add a new one"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> Migrate(Pool& pool, const std::vector<Migration>& migrations) {
  RETURN_IF_ERROR(CheckList(migrations));
  int applied_now = 0;
  // One transaction per migration, each first taking the transaction-scoped
  // advisory lock: a replica starting at the same moment waits, then sees
  // the migration recorded and moves on.
  while (true) {
    bool done = false;
    const Migration* current = nullptr;
    absl::Status status = pool.Run([&](pqxx::work& tx) -> absl::Status {
      current = nullptr;
      // A migration may take long on a big table, and so may waiting for
      // another replica's: the pool's statement_timeout does not apply.
      tx.exec("SET LOCAL statement_timeout = 0");
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);
      tx.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations ("
          "  version int PRIMARY KEY,"
          "  name text NOT NULL,"
          "  checksum text NOT NULL,"
          "  applied_at timestamptz NOT NULL DEFAULT now())");
      std::map<int, Applied> applied;
      for (const auto& row : tx.exec("SELECT version, name, checksum FROM schema_migrations")) {
        applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
      }
      RETURN_IF_ERROR(CheckHistory(applied, migrations));
      for (const auto& m : migrations) {
        if (applied.count(m.version) == 0) {
          current = &m;
          break;
        }
      }
      if (current == nullptr) {
        done = true;
        return absl::OkStatus();
      }
      tx.exec(current->sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     current->version, current->name, Checksum(current->sql));
      return absl::OkStatus();
    });
    if (!status.ok()) {
      if (current != nullptr) {
        return absl::Status(status.code(), absl::StrCat("migration ", current->version, " (", current->name,
                                                        "): ", status.message()));
      }
      return status;
    }
    if (done) return applied_now;
    ++applied_now;
    log::Info("migration applied", {{"version", current->version}, {"name", current->name}});
  }
}

}  // namespace medkoord::db
