#pragma once
// Private PostgreSQL 15 clusters for integration tests.
//
// One cluster serves the whole test run: ctest's `postgres` fixture starts it
// (tests/support/CMakeLists.txt) and records it in an info file in the build
// folder; a test binary run by hand, without that file, starts its own for
// the process. Each test process gets fresh databases from CreateDatabase().
// The cluster runs as an unprivileged user in a temporary directory on a free
// port, and a watchdog process (medkoord-pg-cluster) stops it and removes the
// directory even when the test process crashes.

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace medkoord::testing {

class PostgresCluster {
 public:
  // Whether the PostgreSQL 15 server binaries are installed. Integration
  // tests skip (GTEST_SKIP) only when this is false.
  static bool BinariesAvailable();

  // The cluster of this test run (the ctest fixture's), else one started for
  // this process and stopped when it exits. Never restart it: other tests
  // share it.
  static absl::StatusOr<PostgresCluster*> Shared();

  // A cluster of the caller's own, e.g. to restart it under a connection
  // pool. Stopped and removed when destroyed.
  static absl::StatusOr<std::unique_ptr<PostgresCluster>> StartPrivate();

  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // Creates an empty database and returns its libpq URI
  // (postgresql://medkoord@127.0.0.1:<port>/<name>).
  absl::StatusOr<std::string> CreateDatabase(std::string_view prefix = "t");
  // Drops a database made by CreateDatabase, disconnecting its clients.
  absl::Status DropDatabase(const std::string& url);

  // Stops the server and starts it again on the same port (the connections
  // of every client break). Private clusters only.
  absl::Status Restart();
  // Stop / start separately, to observe a client while the server is down.
  absl::Status StopServer();
  absl::Status StartServer();

  // A URI to database `db` as the superuser.
  std::string Url(std::string_view db = "postgres") const;
  int port() const { return port_; }

 private:
  PostgresCluster() = default;
  absl::Status Command(std::string_view command);
  absl::Status ReadReady();

  int port_ = 0;
  std::string host_ = "127.0.0.1";
  std::string user_ = "medkoord";
  // The watchdog of a cluster this process started; -1 for the fixture's.
  pid_t watchdog_ = -1;
  int to_watchdog_ = -1;
  int from_watchdog_ = -1;
  std::string pending_;
};

// Base for integration test fixtures: one fresh database per test suite
// (with ctest each test case is a process, so in effect per test), dropped
// afterwards. Skips when PostgreSQL is not installed.
class PostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  static const std::string& db_url() { return *db_url_; }
  static PostgresCluster& cluster() { return *cluster_; }

 private:
  static PostgresCluster* cluster_;
  static std::string* db_url_;
  static std::string* setup_error_;
};

}  // namespace medkoord::testing
