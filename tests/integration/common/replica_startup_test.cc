// Two replicas of a real service binary started at the same moment on an
// empty database: both come up SERVING, the migrations are applied exactly
// once between them, and both drain and exit 0 on SIGTERM.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <pqxx/pqxx>

#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/support/postgres_cluster.h"

namespace medkoord {
namespace {

using ::medkoord::testing::PostgresTest;

// A child process whose stderr (the JSON log) we read line by line.
struct Replica {
  pid_t pid = -1;
  FILE* log = nullptr;
  int port = 0;
  int applied = -1;             // from the "migrations applied" line
  std::vector<int> versions;    // from each "migration applied" line
};

Replica Launch(const std::string& db_url) {
  int err[2];
  EXPECT_EQ(pipe(err), 0);
  Replica r;
  r.pid = fork();
  if (r.pid == 0) {
    dup2(err[1], STDERR_FILENO);
    close(err[0]);
    setenv("MEDKOORD_DB_URL", db_url.c_str(), 1);
    setenv("MEDKOORD_PRINCIPAL_KEY", "replica-startup-test-key-0123456789abcdef", 1);
    setenv("MEDKOORD_LISTEN", "127.0.0.1:0", 1);
    setenv("MEDKOORD_ASSESSMENT_ADDR", "127.0.0.1:1", 1);  // the relay retries; not used here
    execl(INTAKE_BINARY, INTAKE_BINARY, nullptr);
    _exit(127);
  }
  close(err[1]);
  r.log = fdopen(err[0], "r");
  return r;
}

// Reads log lines until both the port and the migration count are known.
void ReadStartup(Replica& r) {
  char line[8192];
  while ((r.port == 0 || r.applied < 0) && fgets(line, sizeof(line), r.log) != nullptr) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    const std::string msg = j.value("msg", "");
    if (msg == "listening") r.port = j.value("grpc_port", 0);
    if (msg == "migration applied") r.versions.push_back(j.value("version", -1));
    if (msg == "migrations applied") r.applied = j.value("applied", -1);
  }
}

bool Serving(int port) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckResponse resp;
  return stub->Check(&ctx, {}, &resp).ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

class ReplicaStartupTest : public PostgresTest {};

TEST_F(ReplicaStartupTest, TwoReplicasOnAnEmptyDatabaseMigrateOnceAndServe) {
  Replica a = Launch(db_url());
  Replica b = Launch(db_url());
  ReadStartup(a);
  ReadStartup(b);
  // Keep draining the logs so a full pipe never blocks a replica; on any
  // early return the guard stops the replicas and joins the drains.
  std::thread drain_a([f = a.log] { char buf[4096]; while (fgets(buf, sizeof(buf), f) != nullptr) {} });
  std::thread drain_b([f = b.log] { char buf[4096]; while (fgets(buf, sizeof(buf), f) != nullptr) {} });
  struct Guard {
    Replica& a;
    Replica& b;
    std::thread& da;
    std::thread& db;
    ~Guard() {
      for (Replica* r : {&a, &b}) {
        if (r->pid > 0 && waitpid(r->pid, nullptr, WNOHANG) == 0) {
          kill(r->pid, SIGKILL);
          waitpid(r->pid, nullptr, 0);
        }
      }
      da.join();
      db.join();
      fclose(a.log);
      fclose(b.log);
    }
  } guard{a, b, drain_a, drain_b};
  ASSERT_GT(a.port, 0);
  ASSERT_GT(b.port, 0);

  pqxx::connection conn(db_url());
  pqxx::work tx(conn);
  const int known = tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<int>();
  tx.commit();
  ASSERT_GT(known, 0);
  // Exactly once between them: each migration runs in its own transaction
  // under the advisory lock, so the replicas may share the work, but every
  // version is applied by exactly one of them.
  EXPECT_EQ(a.applied + b.applied, known);
  std::vector<int> versions = a.versions;
  versions.insert(versions.end(), b.versions.begin(), b.versions.end());
  std::sort(versions.begin(), versions.end());
  std::vector<int> expected(known);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(versions, expected);

  // Readiness is polled once a second; wait for it, bounded.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!(Serving(a.port) && Serving(b.port)) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(Serving(a.port));
  EXPECT_TRUE(Serving(b.port));

  for (Replica* r : {&a, &b}) kill(r->pid, SIGTERM);
  for (Replica* r : {&a, &b}) {
    int status = 0;
    waitpid(r->pid, &status, 0);
    r->pid = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
}

}  // namespace
}  // namespace medkoord
