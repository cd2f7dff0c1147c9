// Faults with real `shortage` processes, two replicas on one database: a
// replica killed with SIGKILL under a subscribed client, a graceful SIGTERM
// with 50 open streams, and a PostgreSQL restart under both replicas. In
// each, a client that resumes from the last sequence number it saw (on the
// other replica) ends up with every event of the log exactly once, in order,
// byte for byte what the log holds.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <pqxx/pqxx>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "tests/integration/shortage/shortage_test_env.h"

extern char** environ;

namespace medkoord::shortage::testing {
namespace {

using ::testing::HasSubstr;

// One `shortage` process. Its JSON log (stderr) is read on a thread of its
// own, so a full pipe never blocks it, and start-up is awaited on it.
class Replica {
 public:
  static std::unique_ptr<Replica> Launch(const std::string& db_url) {
    auto r = std::unique_ptr<Replica>(new Replica());
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "MEDKOORD_", 9) != 0) env.emplace_back(*e);
    }
    env.push_back("MEDKOORD_DB_URL=" + db_url);
    env.push_back("MEDKOORD_PRINCIPAL_KEY=" + PrincipalKey());
    env.push_back("MEDKOORD_LISTEN=127.0.0.1:0");
    env.push_back("MEDKOORD_SHUTDOWN_GRACE=60s");
    env.push_back("MEDKOORD_FEED_POLL_INTERVAL=100ms");
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    char* argv[] = {const_cast<char*>(SHORTAGE_BINARY), nullptr};

    int err[2];
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    r->pid_ = fork();
    if (r->pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      dup2(err[1], STDERR_FILENO);
      execve(SHORTAGE_BINARY, argv, envp.data());
      _exit(127);
    }
    close(err[1]);
    r->log_ = fdopen(err[0], "r");
    r->reader_ = std::thread([raw = r.get()] { raw->ReadLog(); });
    return r;
  }

  ~Replica() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    reader_.join();
    fclose(log_);
  }

  // Waits until the process listens and its live feed has read the log.
  bool AwaitReady(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return log_closed_ || (port_ > 0 && feed_ready_); };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout) && !log_closed_;
  }

  int port() {
    absl::MutexLock lock(&mu_);
    return port_;
  }
  pid_t pid() const { return pid_; }

  void Signal(int signal) { kill(pid_, signal); }
  // Blocks until the process ended; its wait status.
  int AwaitExit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  Replica() = default;

  void ReadLog() {
    char line[16384];
    while (fgets(line, sizeof(line), log_) != nullptr) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object()) continue;
      const std::string msg = j.value("msg", "");
      absl::MutexLock lock(&mu_);
      if (msg == "listening") port_ = j.value("grpc_port", 0);
      if (msg == "feed listening") feed_ready_ = true;
    }
    absl::MutexLock lock(&mu_);
    log_closed_ = true;
  }

  pid_t pid_ = -1;
  FILE* log_ = nullptr;
  std::thread reader_;
  absl::Mutex mu_;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  bool feed_ready_ ABSL_GUARDED_BY(mu_) = false;
  bool log_closed_ ABSL_GUARDED_BY(mu_) = false;
};

std::unique_ptr<v1::Shortage::Stub> StubFor(Replica& replica) {
  return v1::Shortage::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", replica.port()), grpc::InsecureChannelCredentials()));
}

struct Watch {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReader<v1::WatchShortagesResponse>> reader;
};

Watch Open(v1::Shortage::Stub& stub, int64_t after) {
  Watch w;
  w.context = Signed(TaskForce(), "WatchShortages", absl::Seconds(120));
  v1::WatchShortagesRequest request;
  request.set_after_sequence(after);
  w.reader = stub.WatchShortages(w.context.get(), request);
  return w;
}

std::string Announce(v1::Shortage::Stub& stub) {
  auto context = Signed(TaskForce(), "AnnounceShortage");
  v1::ShortageRecord s;
  grpc::Status status = stub.AnnounceShortage(context.get(), Peginterferon(), &s);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return s.name();
}

grpc::Status Report(v1::Shortage::Stub& stub, const std::string& name, int64_t stock) {
  auto context = Signed(TaskForce(), "ReportPosition", absl::Seconds(10));
  v1::RegionalPosition p;
  return stub.ReportPosition(context.get(), Position(name, common::v1::REGION_MIDTJYLLAND, stock, 10, 40), &p);
}

// The whole event log as the database holds it: payload by sequence.
std::vector<std::pair<int64_t, std::string>> StoredLog(const std::string& db_url) {
  pqxx::connection connection(db_url);
  pqxx::work tx(connection);
  std::vector<std::pair<int64_t, std::string>> out;
  for (const pqxx::row& r : tx.exec("SELECT sequence, payload FROM events ORDER BY sequence")) {
    out.emplace_back(r[0].as<int64_t>(), pqxx::binarystring(r[1]).str());
  }
  return out;
}

// Reads events until the last one has sequence `last` (CaughtUp markers
// skipped); false when the stream ended first.
bool ReadThrough(grpc::ClientReader<v1::WatchShortagesResponse>& reader, int64_t last,
                 std::vector<v1::ShortageEvent>* events) {
  v1::WatchShortagesResponse response;
  while (events->empty() || events->back().sequence() < last) {
    if (!reader.Read(&response)) return false;
    if (response.has_event()) events->push_back(response.event());
  }
  return true;
}

// Every event of the log exactly once, in order, as stored.
void ExpectWholeLog(const std::vector<v1::ShortageEvent>& events,
                    const std::vector<std::pair<int64_t, std::string>>& log, const std::string& who) {
  ASSERT_EQ(events.size(), log.size()) << who;
  for (size_t i = 0; i < log.size(); ++i) {
    ASSERT_EQ(events[i].sequence(), log[i].first) << who << " at " << i;
    EXPECT_EQ(events[i].SerializeAsString(), log[i].second) << who << " event " << log[i].first;
  }
}

// The after_sequence named by a "resume with after_sequence=N" status.
std::optional<int64_t> ResumePoint(const grpc::Status& status) {
  const std::string marker = "resume with after_sequence=";
  const std::string& message = status.error_message();
  const size_t at = message.find(marker);
  if (at == std::string::npos) return std::nullopt;
  size_t end = at + marker.size();
  while (end < message.size() && std::isdigit(static_cast<unsigned char>(message[end]))) ++end;
  int64_t n = 0;
  if (!absl::SimpleAtoi(message.substr(at + marker.size(), end - at - marker.size()), &n)) return std::nullopt;
  return n;
}

class ShortageFaultTest : public medkoord::testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto url = cluster().CreateDatabase("shortage_fault");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
  }
  void TearDown() override {
    replicas_.clear();
    if (!url_.empty()) (void)cluster().DropDatabase(url_);
  }

  Replica& StartReplica(const std::string& url) {
    replicas_.push_back(Replica::Launch(url));
    EXPECT_TRUE(replicas_.back()->AwaitReady(absl::Seconds(60))) << "replica did not start";
    return *replicas_.back();
  }

  std::string url_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(ShortageFaultTest, ReplicaKilledUnderAClientWhoResumesOnTheOtherLosesNothing) {
  Replica& doomed = StartReplica(url_);
  Replica& survivor = StartReplica(url_);
  ASSERT_FALSE(HasFailure());
  auto on_doomed = StubFor(doomed);
  auto on_survivor = StubFor(survivor);
  const std::string name = Announce(*on_survivor);

  Watch w = Open(*on_doomed, 0);
  std::vector<v1::ShortageEvent> events;
  ASSERT_TRUE(ReadThrough(*w.reader, 1, &events));

  // Writers on both replicas while the client reads; the one on the doomed
  // replica stops at its first failure (the kill).
  std::thread to_survivor([&] {
    for (int i = 0; i < 60; ++i) EXPECT_TRUE(Report(*on_survivor, name, 1000 + i).ok());
  });
  std::thread to_doomed([&] {
    for (int i = 0; i < 60; ++i) {
      if (!Report(*on_doomed, name, 2000 + i).ok()) return;
    }
  });
  v1::WatchShortagesResponse response;
  while (events.size() < 25 && w.reader->Read(&response)) {
    if (response.has_event()) events.push_back(response.event());
  }
  ASSERT_GE(events.size(), 25u) << w.reader->Finish().error_message();
  doomed.Signal(SIGKILL);
  const int status = doomed.AwaitExit();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  // Whatever was already in flight, then the stream breaks.
  while (w.reader->Read(&response)) {
    if (response.has_event()) events.push_back(response.event());
  }
  EXPECT_FALSE(w.reader->Finish().ok());
  to_survivor.join();
  to_doomed.join();

  const auto log = StoredLog(url_);
  ASSERT_GE(log.size(), 62u);  // the announcement and the survivor's 60, at least
  Watch resumed = Open(*on_survivor, events.back().sequence());
  ASSERT_TRUE(ReadThrough(*resumed.reader, log.back().first, &events)) << resumed.reader->Finish().error_message();
  ExpectWholeLog(events, log, "resumed client");
}

TEST_F(ShortageFaultTest, SigtermWithFiftyOpenStreamsEndsThemAtOnceAndEachResumesOnTheOtherReplica) {
  Replica& leaving = StartReplica(url_);
  Replica& staying = StartReplica(url_);
  ASSERT_FALSE(HasFailure());
  auto on_leaving = StubFor(leaving);
  auto on_staying = StubFor(staying);
  const std::string name = Announce(*on_staying);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Report(*on_staying, name, i).ok());  // 1..6

  // Clients that joined at different points, all live by the time of SIGTERM.
  constexpr int kClients = 50;
  std::vector<Watch> watches;
  std::vector<std::vector<v1::ShortageEvent>> received(kClients);
  std::vector<int64_t> joined_after(kClients);
  for (int c = 0; c < kClients; ++c) {
    joined_after[c] = c % 6;
    watches.push_back(Open(*on_leaving, joined_after[c]));
  }
  for (int c = 0; c < kClients; ++c) {
    ASSERT_TRUE(ReadThrough(*watches[c].reader, 6, &received[c])) << c;
  }

  // Writes go on (on the other replica) while this one shuts down.
  std::thread writer([&] {
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(Report(*on_staying, name, 100 + i).ok());
  });
  const absl::Time signalled = absl::Now();
  leaving.Signal(SIGTERM);
  const int status = leaving.AwaitExit();
  const absl::Duration took = absl::Now() - signalled;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  // The grace is 60 s; streams that waited it out would show here.
  EXPECT_LT(took, absl::Seconds(15));
  RecordProperty("sigterm_to_exit_ms", static_cast<int>(absl::ToInt64Milliseconds(took)));
  writer.join();

  const auto log = StoredLog(url_);
  ASSERT_EQ(log.back().first, 26);
  for (int c = 0; c < kClients; ++c) {
    v1::WatchShortagesResponse response;
    while (watches[c].reader->Read(&response)) {
      if (response.has_event()) received[c].push_back(response.event());
    }
    const grpc::Status ended = watches[c].reader->Finish();
    ASSERT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << c << ": " << ended.error_message();
    const std::optional<int64_t> resume = ResumePoint(ended);
    ASSERT_TRUE(resume.has_value()) << ended.error_message();
    // Nothing was filtered out, so the resume point is the last event sent.
    EXPECT_EQ(*resume, received[c].back().sequence()) << c;

    Watch resumed = Open(*on_staying, *resume);
    ASSERT_TRUE(ReadThrough(*resumed.reader, log.back().first, &received[c])) << c;
    resumed.context->TryCancel();
    (void)resumed.reader->Finish();
    // From where it joined to the end, once each, as stored.
    const std::vector<std::pair<int64_t, std::string>> expected(log.begin() + joined_after[c], log.end());
    ExpectWholeLog(received[c], expected, absl::StrCat("client ", c));
  }
}

TEST_F(ShortageFaultTest, PostgresRestartUnderBothReplicasLosesNoEvent) {
  auto cluster = medkoord::testing::PostgresCluster::StartPrivate();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto url = (*cluster)->CreateDatabase("shortage_fault_restart");
  ASSERT_TRUE(url.ok()) << url.status();
  Replica& a = StartReplica(*url);
  Replica& b = StartReplica(*url);
  ASSERT_FALSE(HasFailure());
  auto on_a = StubFor(a);
  auto on_b = StubFor(b);
  const std::string name = Announce(*on_a);
  ASSERT_TRUE(Report(*on_a, name, 1).ok());

  // One client stays connected to b through the restart; another leaves a
  // before it and resumes on b afterwards.
  Watch staying = Open(*on_b, 0);
  Watch leaving = Open(*on_a, 0);
  std::vector<v1::ShortageEvent> kept;
  std::vector<v1::ShortageEvent> resumed;
  ASSERT_TRUE(ReadThrough(*staying.reader, 2, &kept));
  ASSERT_TRUE(ReadThrough(*leaving.reader, 2, &resumed));
  leaving.context->TryCancel();
  (void)leaving.reader->Finish();

  ASSERT_TRUE((*cluster)->Restart().ok());

  // Each replica's pool replaces its broken connections; a write may need a
  // second try. Writes on both replicas.
  for (int i = 0; i < 6; ++i) {
    v1::Shortage::Stub& stub = i % 2 == 0 ? *on_a : *on_b;
    grpc::Status status;
    for (int attempt = 0; attempt < 50; ++attempt) {
      status = Report(stub, name, 10 + i);
      if (status.ok()) break;
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  const auto log = StoredLog(*url);
  ASSERT_GE(log.size(), 8u);
  ASSERT_TRUE(ReadThrough(*staying.reader, log.back().first, &kept)) << staying.reader->Finish().error_message();
  ExpectWholeLog(kept, log, "client kept connected");
  Watch again = Open(*on_b, resumed.back().sequence());
  ASSERT_TRUE(ReadThrough(*again.reader, log.back().first, &resumed)) << again.reader->Finish().error_message();
  ExpectWholeLog(resumed, log, "client resumed");
  staying.context->TryCancel();
  again.context->TryCancel();
  (void)staying.reader->Finish();
  (void)again.reader->Finish();
  replicas_.clear();  // before their database goes
}

}  // namespace
}  // namespace medkoord::shortage::testing
