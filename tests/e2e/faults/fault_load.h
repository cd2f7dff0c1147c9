#pragma once
// Load and checks shared by the fault tests: regional clients submitting
// applications through the gateway while processes or the database fail,
// retrying as a real regional system does, and the exactly-once check of
// what intake stored and assessment registered.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "medkoord/common/v1/common.pb.h"
#include "tests/e2e/suite.h"

namespace medkoord::e2e::faults {

// One regional IT system: its region and its API key.
struct RegionalClient {
  std::string slug;  // "syddanmark"
  medkoord::common::v1::Region region;
  std::string key;
};

// Base of the fault tests: skips only when PostgreSQL is not installed.
class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override;
};

// Suite::Start with FaultGatewayEnv() added, starting again on fresh ports
// on the rare clash of a picked free port with another program.
absl::StatusOr<std::unique_ptr<Suite>> StartFaultSuite(SuiteOptions options = {});

// One API key per Danish region (five clients).
absl::StatusOr<std::vector<RegionalClient>> RegionalClients(const Suite& suite);

// Gateway settings for fault tests: the per-principal rate limit is not what
// they test, and clients retrying through an outage must not trip it.
std::map<std::string, std::string> FaultGatewayEnv();

// Calls `attempt` until it returns anything but UNAVAILABLE, backing off
// between attempts as a client would (20 ms doubling to 500 ms), within
// `budget`. The same request is sent each time, so with a request_id the
// retry is safe. *attempts counts the calls made.
grpc::Status RetryUnavailable(const std::function<grpc::Status()>& attempt, absl::Duration budget,
                              int* attempts = nullptr);

// Each client submits applications back to back (unique request_id and
// region_ref per submission), retrying UNAVAILABLE with the SAME request_id
// until acknowledged. A submission once sent is always retried to an answer,
// also after Stop(), so at the end every request intake may have stored has
// been acknowledged and the stored set must equal the acknowledged set.
class SubmissionLoad {
 public:
  struct Stats {
    int acknowledged = 0;
    int attempts = 0;                     // calls made, retries included
    int retried = 0;                      // submissions that needed > 1 call
    int max_attempts = 0;                 // calls of the most retried submission
    std::vector<std::string> failures;    // submissions that ended in an error
  };

  SubmissionLoad(std::shared_ptr<grpc::Channel> gateway, std::vector<RegionalClient> clients, std::string run_id);
  ~SubmissionLoad();

  void Start();
  // Waits until every client has at least `per_client` acknowledged
  // submissions (or one has failed). False on timeout.
  bool AwaitAcknowledged(int per_client, absl::Duration timeout);
  // Every client's acknowledged count now.
  int MinAcknowledged() const;
  // Lets each client finish its current submission, then joins them.
  void Stop();

  Stats stats() const;
  // request_id -> case_ref of every acknowledged submission.
  std::map<std::string, std::string> acknowledged() const;

 private:
  void Run(size_t client);

  std::shared_ptr<grpc::Channel> gateway_;
  std::vector<RegionalClient> clients_;
  std::string run_id_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable absl::Mutex mu_;
  std::vector<int> acked_per_client_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

// Checks (gtest EXPECTs) that intake stored every acknowledged submission
// exactly once and nothing else, and that assessment registered each exactly
// once, waiting up to `delivery_timeout` for intake's outbox to deliver.
// Prints the counts and how long delivery took.
void ExpectExactlyOnce(const Suite& suite, const std::map<std::string, std::string>& acknowledged,
                       const std::string& forum_key, absl::Duration delivery_timeout);

// Runs a scalar SQL query (a count) on a database; -1 when it fails.
long QueryLong(const std::string& db_url, const std::string& sql);

}  // namespace medkoord::e2e::faults
