// common/db/migrations.h against a real PostgreSQL: order, idempotence,
// concurrent starters, and the refusals that protect a migrated database.

#include "common/db/migrations.h"

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/postgres_cluster.h"

namespace medkoord::db {
namespace {

using ::medkoord::testing::PostgresTest;

// Migration 3 is deliberately not idempotent: applied twice, it would fail
// (CREATE TABLE) or leave two rows in `applied_log`.
std::vector<Migration> Schema() {
  return {
      {1, "0001_applications", "CREATE TABLE applications (id bigserial PRIMARY KEY, name text NOT NULL);"},
      {2, "0002_applied_log", "CREATE TABLE applied_log (note text NOT NULL);"},
      {3, "0003_decisions",
       "CREATE TABLE decisions (id bigserial PRIMARY KEY, application_id bigint REFERENCES applications);\n"
       "INSERT INTO applied_log VALUES ('0003');"},
  };
}

class MigrationsTest : public PostgresTest {
 protected:
  static PoolOptions Options() {
    PoolOptions options;
    options.url = db_url();
    options.size = 1;
    return options;
  }
  std::unique_ptr<Pool> NewPool() { return std::make_unique<Pool>(Options()); }

  int64_t Scalar(Pool& pool, const std::string& sql) {
    int64_t v = -1;
    absl::Status s = pool.Run([&](pqxx::work& tx) {
      v = tx.exec(sql)[0][0].as<int64_t>();
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return v;
  }
};

TEST_F(MigrationsTest, AppliesEachMigrationOnceInOrder) {
  auto pool = NewPool();
  absl::StatusOr<int> first = Migrate(*pool, Schema());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 3);
  absl::StatusOr<int> again = Migrate(*pool, Schema());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(Scalar(*pool, "SELECT count(*) FROM schema_migrations"), 3);
  EXPECT_EQ(Scalar(*pool, "SELECT max(version) FROM schema_migrations"), 3);
  EXPECT_EQ(Scalar(*pool, "SELECT count(*) FROM applied_log"), 1);
  EXPECT_EQ(Scalar(*pool, "SELECT count(*) FROM schema_migrations WHERE length(checksum) = 64"), 3);
}

// A migration may run longer than the pool's statement_timeout (an index on
// a big table, or waiting for another replica's migration).
TEST_F(MigrationsTest, RunWithoutThePoolsStatementTimeout) {
  PoolOptions options = Options();
  options.statement_timeout = absl::Milliseconds(100);
  Pool pool(options);
  absl::StatusOr<int> applied = Migrate(
      pool, {{1, "0001_slow", "SELECT pg_sleep(0.5);\nCREATE TABLE slow_done (id int PRIMARY KEY);"}});
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  // The pool's own statements still have it.
  absl::Status slow = pool.Run([](pqxx::work& tx) {
    tx.exec("SELECT pg_sleep(0.5)");
    return absl::OkStatus();
  });
  EXPECT_EQ(slow.code(), absl::StatusCode::kDeadlineExceeded) << slow;
  EXPECT_EQ(Scalar(pool, "SELECT count(*) FROM slow_done"), 0);
}

TEST_F(MigrationsTest, AppliesOnlyWhatIsNew) {
  auto pool = NewPool();
  std::vector<Migration> v1 = Schema();
  v1.pop_back();
  ASSERT_EQ(*Migrate(*pool, v1), 2);
  absl::StatusOr<int> upgrade = Migrate(*pool, Schema());
  ASSERT_TRUE(upgrade.ok()) << upgrade.status();
  EXPECT_EQ(*upgrade, 1);
}

TEST_F(MigrationsTest, ConcurrentStartersApplyEachMigrationExactlyOnce) {
  constexpr int kStarters = 6;
  std::vector<std::unique_ptr<Pool>> pools;
  for (int i = 0; i < kStarters; ++i) pools.push_back(NewPool());
  std::atomic<int> total_applied{0};
  std::atomic<int> failures{0};
  std::latch start(kStarters);
  std::vector<std::thread> starters;
  for (int i = 0; i < kStarters; ++i) {
    starters.emplace_back([&, i] {
      start.arrive_and_wait();  // all at the same moment
      absl::StatusOr<int> n = Migrate(*pools[i], Schema());
      if (n.ok()) {
        total_applied.fetch_add(*n);
      } else {
        failures.fetch_add(1);
        ADD_FAILURE() << n.status();
      }
    });
  }
  for (auto& t : starters) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(total_applied.load(), 3);
  EXPECT_EQ(Scalar(*pools[0], "SELECT count(*) FROM schema_migrations"), 3);
  EXPECT_EQ(Scalar(*pools[0], "SELECT count(*) FROM applied_log"), 1);
}

TEST_F(MigrationsTest, RefusesAMigrationWhoseSqlChangedAfterItWasApplied) {
  auto pool = NewPool();
  ASSERT_TRUE(Migrate(*pool, Schema()).ok());
  std::vector<Migration> edited = Schema();
  edited[1].sql = "CREATE TABLE applied_log (note text);";
  absl::StatusOr<int> n = Migrate(*pool, edited);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition) << n.status();
  EXPECT_NE(n.status().message().find("0002_applied_log"), std::string::npos) << n.status();
}

TEST_F(MigrationsTest, RefusesADatabaseMigratedByANewerBinary) {
  auto pool = NewPool();
  ASSERT_TRUE(Migrate(*pool, Schema()).ok());
  std::vector<Migration> older = Schema();
  older.pop_back();
  absl::StatusOr<int> n = Migrate(*pool, older);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition) << n.status();
}

TEST_F(MigrationsTest, AFailingMigrationLeavesNothingOfItself) {
  auto pool = NewPool();
  std::vector<Migration> broken = Schema();
  broken.push_back({4, "0004_broken", "CREATE TABLE half_done (id int);\nSELEC 1;"});
  absl::StatusOr<int> n = Migrate(*pool, broken);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("0004_broken"), std::string::npos) << n.status();
  EXPECT_EQ(Scalar(*pool, "SELECT max(version) FROM schema_migrations"), 3);
  EXPECT_EQ(Scalar(*pool, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'"), 0);
}

TEST_F(MigrationsTest, RejectsAListOutOfOrder) {
  auto pool = NewPool();
  std::vector<Migration> shuffled = Schema();
  std::swap(shuffled[0], shuffled[1]);
  EXPECT_EQ(Migrate(*pool, shuffled).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Scalar(*pool, "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'"), 0);
}

}  // namespace
}  // namespace medkoord::db
