#pragma once
// Forward-only schema migrations, compiled into each service binary from
// services/<name>/migrations/NNNN_<what>.sql (cmake medkoord_embed_migrations).
// Applied at start-up under a PostgreSQL advisory lock, so replicas that start
// together apply each migration exactly once.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/db/pool.h"

namespace medkoord::db {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

// Applies every migration newer than the database's version, each in its own
// transaction, recording it in `schema_migrations`. Returns how many it
// applied. FAILED_PRECONDITION if the database has a version this binary does
// not know (a newer binary migrated it) or a recorded migration's SQL changed.
absl::StatusOr<int> Migrate(Pool& pool, const std::vector<Migration>& migrations);

}  // namespace medkoord::db
