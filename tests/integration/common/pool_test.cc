// common/db/pool.h against a real PostgreSQL: commit and rollback, the error
// mapping, retries, exhaustion and reconnect after a server restart.

#include "common/db/pool.h"

#include <thread>

#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::db {
namespace {

PoolOptions Options(const std::string& url, int size) {
  PoolOptions options;
  options.url = url;
  options.size = size;
  return options;
}

using ::medkoord::testing::PostgresCluster;
using ::medkoord::testing::PostgresTest;

class PoolTest : public PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    pool_ = std::make_unique<Pool>(Options(db_url(), 2));
    ASSERT_TRUE(pool_->Run([](pqxx::work& tx) {
                   tx.exec("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text NOT NULL, "
                           "qty int NOT NULL CHECK (qty >= 0))");
                   tx.exec("TRUNCATE items");
                   return absl::OkStatus();
                 }).ok());
  }

  static int64_t Scalar(Pool& pool, const std::string& sql) {
    int64_t n = -1;
    EXPECT_TRUE(pool.Run([&](pqxx::work& tx) {
                      n = tx.exec1(sql)[0].as<int64_t>();
                      return absl::OkStatus();
                    }).ok());
    return n;
  }
  int64_t CountItems() { return Scalar(*pool_, "SELECT count(*) FROM items"); }

  std::unique_ptr<Pool> pool_;
};

TEST_F(PoolTest, CommitsWhenTheFunctionReturnsOk) {
  ASSERT_TRUE(pool_->Run([](pqxx::work& tx) {
                 tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 1, "paracetamol", 10);
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(CountItems(), 1);
}

TEST_F(PoolTest, ARejectedTransactionLeavesNothing) {
  absl::Status s = pool_->Run([](pqxx::work& tx) {
    tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 1, "a", 1);
    return absl::InvalidArgumentError("rejected after the write");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CountItems(), 0);
}

TEST_F(PoolTest, AFailedStatementRollsBackEarlierWritesOfTheTransaction) {
  absl::Status s = pool_->Run([](pqxx::work& tx) {
    tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 1, "a", 1);
    tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 2, "b", -5);  // CHECK fails
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(CountItems(), 0);
}

TEST_F(PoolTest, MapsPostgresErrorsToStatusCodes) {
  ASSERT_TRUE(pool_->Run([](pqxx::work& tx) {
                 tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 1, "0101701234", 1);
                 return absl::OkStatus();
               }).ok());
  absl::Status duplicate = pool_->Run([](pqxx::work& tx) {
    tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 1, "0101701234", 1);
    return absl::OkStatus();
  });
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kAlreadyExists) << duplicate;
  // The offending key value (PostgreSQL's DETAIL line) stays out of the status.
  EXPECT_EQ(std::string(duplicate.message()).find("(1)"), std::string::npos) << duplicate;

  absl::Status not_null = pool_->Run([](pqxx::work& tx) {
    tx.exec("INSERT INTO items VALUES (2, NULL, 1)");
    return absl::OkStatus();
  });
  EXPECT_EQ(not_null.code(), absl::StatusCode::kFailedPrecondition) << not_null;

  absl::Status syntax = pool_->Run([](pqxx::work& tx) {
    tx.exec("SELEC 1");
    return absl::OkStatus();
  });
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInternal) << syntax;

  absl::Status timeout = pool_->Run([](pqxx::work& tx) {
    tx.exec("SET LOCAL statement_timeout = '10ms'");
    tx.exec("SELECT pg_sleep(5)");
    return absl::OkStatus();
  });
  EXPECT_EQ(timeout.code(), absl::StatusCode::kDeadlineExceeded) << timeout;
}

TEST_F(PoolTest, RetriesSerializationFailuresThenGivesUp) {
  int calls = 0;
  absl::Status s = pool_->Run([&](pqxx::work& tx) -> absl::Status {
    if (++calls < 3) throw pqxx::serialization_failure("could not serialize access");
    tx.exec_params("INSERT INTO items VALUES ($1, $2, $3)", 1, "a", 1);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(CountItems(), 1);

  calls = 0;
  s = pool_->Run([&](pqxx::work&) -> absl::Status {
    ++calls;
    throw pqxx::deadlock_detected("deadlock detected");
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(calls, 4);  // the first try and three retries
}

TEST_F(PoolTest, ARealSerializationConflictIsRetried) {
  ASSERT_TRUE(pool_->Run([](pqxx::work& tx) {
                 tx.exec("INSERT INTO items VALUES (1, 'a', 10)");
                 return absl::OkStatus();
               }).ok());
  // The first attempt reads, then a concurrent transaction commits a change
  // to the same row before it writes: SERIALIZABLE aborts it, Run retries.
  auto other = pool_->Connect();
  ASSERT_TRUE(other.ok()) << other.status();
  int calls = 0;
  absl::Status s = pool_->Run([&](pqxx::work& tx) {
    ++calls;
    tx.exec("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
    int qty = tx.exec("SELECT qty FROM items WHERE id = 1")[0][0].as<int>();
    if (calls == 1) {
      pqxx::work concurrent(**other);
      concurrent.exec("UPDATE items SET qty = qty - 1 WHERE id = 1");
      concurrent.commit();
    }
    tx.exec_params("UPDATE items SET qty = $1 WHERE id = 1", qty - 2);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls, 2);
  int qty = 0;
  ASSERT_TRUE(pool_->Run([&](pqxx::work& tx) {
                 qty = tx.exec("SELECT qty FROM items WHERE id = 1")[0][0].as<int>();
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(qty, 7);
}

TEST_F(PoolTest, TheStatementTimeoutCancelsAStuckStatementAndTheConnectionGoesOn) {
  PoolOptions options = Options(db_url(), 1);
  options.statement_timeout = absl::Milliseconds(200);
  Pool pool(options);
  // A statement waiting for a row lock another session holds.
  ASSERT_TRUE(pool_->Run([](pqxx::work& tx) {
                   tx.exec("INSERT INTO items VALUES (1, 'a', 1)");
                   return absl::OkStatus();
                 }).ok());
  absl::Notification locked, release;
  std::thread holder([&] {
    EXPECT_TRUE(pool_->Run([&](pqxx::work& tx) {
                       tx.exec("SELECT * FROM items WHERE id = 1 FOR UPDATE");
                       locked.Notify();
                       // Held until the stuck statement is answered, or 5 s
                       // (without a timeout it would wait for ever).
                       release.WaitForNotificationWithTimeout(absl::Seconds(5));
                       return absl::OkStatus();
                     }).ok());
  });
  locked.WaitForNotification();
  const absl::Time start = absl::Now();
  absl::Status stuck = pool.Run([](pqxx::work& tx) {
    tx.exec("UPDATE items SET qty = 2 WHERE id = 1");
    return absl::OkStatus();
  });
  const absl::Duration waited = absl::Now() - start;
  release.Notify();
  holder.join();
  EXPECT_EQ(stuck.code(), absl::StatusCode::kDeadlineExceeded) << stuck;
  EXPECT_LT(waited, absl::Seconds(3));
  // The same (only) connection answers the next calls, transaction or not,
  // and keeps its timeout; nothing of the cancelled statement stayed.
  std::string timeout;
  ASSERT_TRUE(pool.Run([&](pqxx::work& tx) {
                    timeout = tx.exec1("SHOW statement_timeout")[0].as<std::string>();
                    return absl::OkStatus();
                  }).ok());
  EXPECT_EQ(timeout, "200ms");
  absl::Status slow = pool.RunAutocommit(
      [](pqxx::nontransaction& tx) {
        tx.exec("SELECT pg_sleep(5)");
        return absl::OkStatus();
      },
      /*repeatable=*/false);
  EXPECT_EQ(slow.code(), absl::StatusCode::kDeadlineExceeded) << slow;
  EXPECT_EQ(pool.stats().reconnects, 0);
  EXPECT_EQ(Scalar(pool, "SELECT qty FROM items WHERE id = 1"), 1);
}

TEST_F(PoolTest, AnExhaustedPoolAnswersUnavailableAfterTheTimeout) {
  PoolOptions options = Options(db_url(), 1);
  options.acquire_timeout = absl::Milliseconds(50);
  Pool small(options);
  absl::Notification entered;
  absl::Notification release;
  std::thread holder([&] {
    (void)small.Run([&](pqxx::work&) {
      entered.Notify();
      release.WaitForNotification();
      return absl::OkStatus();
    });
  });
  entered.WaitForNotification();
  EXPECT_EQ(small.stats().in_use, 1);
  absl::Status s = small.Run([](pqxx::work&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_GE(small.stats().waits, 1);
  release.Notify();
  holder.join();
  EXPECT_TRUE(small.Run([](pqxx::work&) { return absl::OkStatus(); }).ok());
  EXPECT_EQ(small.stats().in_use, 0);
}

TEST_F(PoolTest, PrepareRunsOnEveryNewConnection) {
  Pool prepared({.url = db_url(), .size = 2, .prepare = [](pqxx::connection& c) {
                   c.prepare("count_items", "SELECT count(*) FROM items");
                 }});
  int64_t n = -1;
  ASSERT_TRUE(prepared.Run([&](pqxx::work& tx) {
                 n = tx.exec_prepared1("count_items")[0].as<int64_t>();
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(n, 0);
}

TEST(PoolReconnectTest, ReconnectsAfterTheServerRestarts) {
  if (!PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL 15 is not installed";
  // A cluster of our own: restarting the shared one would break other tests.
  auto cluster = PostgresCluster::StartPrivate();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto url = (*cluster)->CreateDatabase("reconnect");
  ASSERT_TRUE(url.ok()) << url.status();
  Pool pool({.url = *url, .size = 2, .prepare = [](pqxx::connection& c) {
               c.prepare("insert_note", "INSERT INTO notes (body) VALUES ($1)");
             }});
  ASSERT_TRUE(pool.Run([](pqxx::work& tx) {
                 tx.exec("CREATE TABLE notes (id serial PRIMARY KEY, body text)");
                 return absl::OkStatus();
               }).ok());
  ASSERT_TRUE(pool.Run([](pqxx::work& tx) {
                 tx.exec_prepared("insert_note", "before");
                 return absl::OkStatus();
               }).ok());

  ASSERT_TRUE((*cluster)->StopServer().ok());
  absl::Status down = pool.Run([](pqxx::work& tx) {
    tx.exec("SELECT 1");
    return absl::OkStatus();
  });
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_EQ(pool.Ping().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE((*cluster)->StartServer().ok());
  EXPECT_TRUE(pool.Ping().ok());
  // Every pooled connection works again, prepared statements included.
  for (int i = 0; i < 4; ++i) {
    absl::Status s = pool.Run([&](pqxx::work& tx) {
      tx.exec_prepared("insert_note", "after");
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE((*cluster)->Restart().ok());
  int64_t notes = 0;
  absl::Status s = pool.Run([&](pqxx::work& tx) {
    notes = tx.exec("SELECT count(*) FROM notes")[0][0].as<int64_t>();
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(notes, 5);
  EXPECT_GE(pool.stats().reconnects, 1);
}

}  // namespace
}  // namespace medkoord::db
