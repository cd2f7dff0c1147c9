#pragma once
// The RWD schema migrations, compiled in from migrations/*.sql.
#include <vector>

#include "common/db/migrations.h"

namespace medkoord::rwd {
const std::vector<medkoord::db::Migration>& Migrations();
}  // namespace medkoord::rwd
