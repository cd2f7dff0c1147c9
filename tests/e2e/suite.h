#pragma once
// The whole of medkoord as processes for end-to-end tests: the four domain
// services and the gateway, each with a fresh database in the test run's
// PostgreSQL cluster, on free loopback ports, plus one API key per role.
// Processes die with the test process (PR_SET_PDEATHSIG), so a crashed test
// leaves nothing running.

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/principal.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::e2e {

struct Process {
  std::string name;
  pid_t pid = -1;
  std::string log_file;
};

struct SuiteOptions {
  // Extra gateway flags, e.g. {"rate_limit_per_second", "5"}.
  std::map<std::string, std::string> gateway_env;
  bool tls = false;  // gateway listener with a CA made for the suite
  // With tls: also request client certificates, signed by the same CA;
  // client.pem (CN=mtls-admin) is mapped to an admin, stranger.pem is not.
  bool mtls = false;
  // A PostgreSQL cluster of the suite's own instead of the test run's shared
  // one, so that a fault test may stop and restart it (postgres()) without
  // disturbing other tests.
  bool private_postgres = false;
};

class Suite {
 public:
  static absl::StatusOr<std::unique_ptr<Suite>> Start(SuiteOptions options = {});
  ~Suite();

  std::string gateway_addr() const { return "127.0.0.1:" + std::to_string(ports_.at("gateway")); }
  int http_port() const { return http_port_; }
  std::string service_addr(const std::string& svc) const { return "127.0.0.1:" + std::to_string(ports_.at(svc)); }
  const std::string& principal_key() const { return principal_key_; }
  const std::string& db_url(const std::string& svc) const { return db_urls_.at(svc); }
  const std::string& dir() const { return dir_; }
  const std::string& ca_file() const { return ca_file_; }

  // A channel to the gateway (TLS when the suite runs with TLS).
  std::shared_ptr<grpc::Channel> GatewayChannel() const;

  // Creates an API key with the gateway's bootstrap command.
  absl::StatusOr<std::string> CreateKey(const std::string& principal_id, const std::string& roles,
                                        const std::string& region = "") const;

  // Loads the local suite's demo data with deploy/local's own loaders (every
  // file of deploy/local/demo.d, in name order) through the gateway, with
  // `api_key` (roles forum_secretariat, task_force, analyst and admin, as the
  // local suite's demo key). The loaders' output goes to dir()/demo.log.
  absl::Status LoadDemoData(const std::string& api_key) const;

  // The process id of one of the suite's processes ("gateway"), -1 if it is
  // not running.
  pid_t pid(const std::string& name) const;

  // Stops one process with SIGTERM and waits for it.
  void Stop(const std::string& name);
  // Kills one process with SIGKILL (a crash: no graceful shutdown, in-flight
  // calls and transactions cut off) and reaps it.
  void Kill(const std::string& name);
  // Starts a stopped or killed process again with the same settings (same
  // port, same database) and waits until its health check says SERVING.
  absl::Status Restart(const std::string& name, absl::Duration timeout = absl::Seconds(60));

  // The suite's PostgreSQL cluster. Stop/restart it only with
  // SuiteOptions::private_postgres.
  testing::PostgresCluster& postgres() const { return *cluster_; }

  static std::string BinaryDir();

 private:
  Suite() = default;
  absl::StatusOr<Process> Launch(const std::string& name, const std::string& binary,
                                 const std::map<std::string, std::string>& env) const;
  // Sends `signal` to a running process and waits for it to exit.
  void SignalAndReap(const std::string& name, int signal);
  absl::Status WaitServing(const std::string& name, const std::string& addr,
                           absl::Duration timeout = absl::Seconds(60)) const;

  std::string dir_;
  std::string principal_key_;
  std::string ca_file_;
  std::map<std::string, int> ports_;
  int http_port_ = 0;
  std::map<std::string, std::string> db_urls_;
  std::vector<Process> processes_;
  // Each process's environment, to restart it as it was.
  std::map<std::string, std::map<std::string, std::string>> envs_;
  std::unique_ptr<testing::PostgresCluster> own_cluster_;  // private_postgres
  testing::PostgresCluster* cluster_ = nullptr;
};

// Call metadata for a key (empty key: none).
void Authorize(grpc::ClientContext& ctx, const std::string& key);

}  // namespace medkoord::e2e
