#include "tests/support/postgres_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include <pqxx/pqxx>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace medkoord::testing {
namespace {

constexpr char kPostgresBinary[] = "/usr/lib/postgresql/15/bin/postgres";

std::string InfoPath() {
  if (const char* env = std::getenv("MEDKOORD_TEST_PG_INFO"); env != nullptr && *env != '\0') return env;
  return MEDKOORD_TEST_PG_INFO;
}

// key=value lines, as written by `medkoord-pg-cluster start`.
std::map<std::string, std::string> ReadInfo(const std::string& path) {
  std::map<std::string, std::string> info;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) info[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return info;
}

bool Answers(const std::string& host, int port, const std::string& user) {
  std::string conninfo = absl::StrCat("host=", host, " port=", port, " user=", user,
                                      " dbname=postgres connect_timeout=5");
  return PQping(conninfo.c_str()) == PQPING_OK;
}

std::string DatabaseNameOf(const std::string& url) {
  std::string name = url.substr(url.rfind('/') + 1);
  return name.substr(0, name.find('?'));
}

std::string Sanitize(std::string_view prefix) {
  std::string out;
  for (char c : prefix) {
    if (out.size() >= 24) break;
    out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  }
  if (out.empty() || !std::isalpha(static_cast<unsigned char>(out[0]))) out = "t" + out;
  return out;
}

}  // namespace

bool PostgresCluster::BinariesAvailable() { return access(kPostgresBinary, X_OK) == 0; }

absl::StatusOr<PostgresCluster*> PostgresCluster::Shared() {
  static std::mutex mu;
  static PostgresCluster* shared = nullptr;  // lives until exit; see below
  std::lock_guard<std::mutex> lock(mu);
  if (shared != nullptr) return shared;

  auto info = ReadInfo(InfoPath());
  int port = 0;
  if (info.count("port") && absl::SimpleAtoi(info["port"], &port)) {
    auto* fixture = new PostgresCluster();
    fixture->port_ = port;
    if (info.count("host")) fixture->host_ = info["host"];
    if (info.count("user")) fixture->user_ = info["user"];
    // A stale file from an interrupted run points at nothing: start our own.
    if (Answers(fixture->host_, fixture->port_, fixture->user_)) {
      shared = fixture;
      return shared;
    }
    delete fixture;
  }
  auto own = StartPrivate();
  if (!own.ok()) return own.status();
  // Deliberately never destroyed: at process exit (or crash) the pipe to the
  // watchdog closes, which then stops the server and removes the directory.
  shared = own->release();
  return shared;
}

absl::StatusOr<std::unique_ptr<PostgresCluster>> PostgresCluster::StartPrivate() {
  if (!BinariesAvailable()) return absl::FailedPreconditionError("PostgreSQL 15 is not installed");
  int to_child[2];
  int from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
  std::string binary = MEDKOORD_PG_CLUSTER_BIN;
  char* argv[] = {binary.data(), const_cast<char*>("serve"), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(to_child[0]);
  close(from_child[1]);
  if (rc != 0) {
    close(to_child[1]);
    close(from_child[0]);
    return absl::InternalError(absl::StrCat("cannot run ", binary, ": ", strerror(rc)));
  }
  std::unique_ptr<PostgresCluster> cluster(new PostgresCluster());
  cluster->watchdog_ = pid;
  cluster->to_watchdog_ = to_child[1];
  cluster->from_watchdog_ = from_child[0];
  if (absl::Status s = cluster->ReadReady(); !s.ok()) return s;
  return cluster;
}

PostgresCluster::~PostgresCluster() {
  if (watchdog_ <= 0) return;
  close(to_watchdog_);  // EOF: the watchdog stops the server and cleans up
  close(from_watchdog_);
  int status = 0;
  while (waitpid(watchdog_, &status, 0) < 0 && errno == EINTR) {
  }
}

// Reads the watchdog's next line: "ready port=.. dir=.. user=.." or
// "stopped".
absl::Status PostgresCluster::ReadReady() {
  while (true) {
    size_t nl = pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      if (line == "stopped") return absl::OkStatus();
      if (line.rfind("ready ", 0) != 0) return absl::InternalError("watchdog: " + line);
      std::istringstream fields(line.substr(6));
      std::string field;
      while (fields >> field) {
        if (field.rfind("port=", 0) == 0 && !absl::SimpleAtoi(field.substr(5), &port_)) {
          return absl::InternalError("watchdog: bad port in " + line);
        }
        if (field.rfind("user=", 0) == 0) user_ = field.substr(5);
      }
      return absl::OkStatus();
    }
    char buf[512];
    ssize_t n = read(from_watchdog_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError("the PostgreSQL watchdog exited; see its stderr");
    pending_.append(buf, static_cast<size_t>(n));
  }
}

absl::Status PostgresCluster::Command(std::string_view command) {
  if (watchdog_ <= 0) {
    return absl::FailedPreconditionError("the shared test cluster cannot be restarted; use StartPrivate()");
  }
  std::string line = std::string(command) + "\n";
  if (write(to_watchdog_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    return absl::InternalError("cannot talk to the PostgreSQL watchdog");
  }
  return ReadReady();
}

absl::Status PostgresCluster::Restart() { return Command("restart"); }
absl::Status PostgresCluster::StopServer() { return Command("stop-server"); }
absl::Status PostgresCluster::StartServer() { return Command("start-server"); }

std::string PostgresCluster::Url(std::string_view db) const {
  return absl::StrCat("postgresql://", user_, "@", host_, ":", port_, "/", std::string(db));
}

absl::StatusOr<std::string> PostgresCluster::CreateDatabase(std::string_view prefix) {
  static std::atomic<int> counter{0};
  static const uint32_t salt = std::random_device{}();
  std::string name = absl::StrCat(Sanitize(prefix), "_", getpid(), "_", counter.fetch_add(1), "_",
                                  salt % 100000);
  try {
    pqxx::connection conn(Url());
    pqxx::nontransaction tx(conn);
    tx.exec("CREATE DATABASE " + tx.quote_name(name));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("CREATE DATABASE ", name, ": ", e.what()));
  }
  return Url(name);
}

absl::Status PostgresCluster::DropDatabase(const std::string& url) {
  std::string name = DatabaseNameOf(url);
  try {
    pqxx::connection conn(Url());
    pqxx::nontransaction tx(conn);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("DROP DATABASE ", name, ": ", e.what()));
  }
  return absl::OkStatus();
}

PostgresCluster* PostgresTest::cluster_ = nullptr;
std::string* PostgresTest::db_url_ = nullptr;
std::string* PostgresTest::setup_error_ = nullptr;

void PostgresTest::SetUpTestSuite() {
  delete setup_error_;
  setup_error_ = nullptr;
  if (!PostgresCluster::BinariesAvailable()) return;
  auto cluster = PostgresCluster::Shared();
  if (!cluster.ok()) {
    setup_error_ = new std::string(cluster.status().ToString());
    return;
  }
  cluster_ = *cluster;
  const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
  auto url = cluster_->CreateDatabase(suite != nullptr ? suite->name() : "t");
  if (!url.ok()) {
    setup_error_ = new std::string(url.status().ToString());
    return;
  }
  db_url_ = new std::string(*url);
}

void PostgresTest::TearDownTestSuite() {
  if (cluster_ != nullptr && db_url_ != nullptr) {
    (void)cluster_->DropDatabase(*db_url_);
  }
  delete db_url_;
  db_url_ = nullptr;
}

void PostgresTest::SetUp() {
  if (!PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL 15 binaries are not installed";
  ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
  ASSERT_NE(db_url_, nullptr);
}

}  // namespace medkoord::testing
