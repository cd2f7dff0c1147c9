#pragma once
// Intake's schema migrations, compiled in from migrations/*.sql.
#include <vector>

#include "common/db/migrations.h"

namespace medkoord::intake {
const std::vector<medkoord::db::Migration>& Migrations();
}  // namespace medkoord::intake
