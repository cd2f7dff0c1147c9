#include "tests/e2e/suite.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/e2e/e2e_util.h"
#include "tests/support/postgres_cluster.h"

extern char** environ;

namespace medkoord::e2e {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string RandomHex(int bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  in.read(raw.data(), bytes);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a command to completion; its stdout.
absl::StatusOr<std::string> RunCapture(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  int out[2];
  if (pipe(out) != 0) return absl::InternalError("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) output.append(buf, n);
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " exited with ", WEXITSTATUS(status)));
  }
  return output;
}

}  // namespace

std::string Suite::BinaryDir() { return MEDKOORD_BINARY_DIR; }

void Authorize(grpc::ClientContext& ctx, const std::string& key) {
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
}

absl::StatusOr<Process> Suite::Launch(const std::string& name, const std::string& binary,
                                      const std::map<std::string, std::string>& env) const {
  Process p;
  p.name = name;
  p.log_file = dir_ + "/" + name + ".log";
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int fd = open(p.log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    // Only MEDKOORD_* settings of our own: nothing inherited can change them.
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).rfind("MEDKOORD_", 0) == 0) unsetenv(std::string(*e).substr(0, std::string(*e).find('=')).c_str());
    }
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execl(binary.c_str(), binary.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  p.pid = pid;
  return p;
}

absl::Status Suite::WaitServing(const std::string& name, const std::string& addr, absl::Duration timeout) const {
  std::shared_ptr<grpc::Channel> channel =
      name == "gateway" ? GatewayChannel() : grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    ctx.set_wait_for_ready(true);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    if (stub->Check(&ctx, req, &resp).ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::OkStatus();
    }
    // The process may have died on bad settings: say so instead of waiting.
    for (const auto& p : processes_) {
      if (p.name == name && waitpid(p.pid, nullptr, WNOHANG) == p.pid) {
        return absl::InternalError(absl::StrCat(name, " exited: ", ReadAll(p.log_file)));
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(name, " not SERVING within ", absl::FormatDuration(timeout), "; log ", dir_, "/", name, ".log"));
}

std::shared_ptr<grpc::Channel> Suite::GatewayChannel() const {
  if (ca_file_.empty()) return grpc::CreateChannel(gateway_addr(), grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadAll(ca_file_);
  return grpc::CreateChannel(gateway_addr(), grpc::SslCredentials(ssl));
}

absl::StatusOr<std::unique_ptr<Suite>> Suite::Start(SuiteOptions options) {
  auto suite = std::unique_ptr<Suite>(new Suite());
  char tmpl[] = "/tmp/medkoord-e2e-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp");
  suite->dir_ = tmpl;
  suite->principal_key_ = RandomHex(32);
  if (options.private_postgres) {
    auto own = testing::PostgresCluster::StartPrivate();
    if (!own.ok()) return own.status();
    suite->own_cluster_ = *std::move(own);
    suite->cluster_ = suite->own_cluster_.get();
  } else {
    auto shared = testing::PostgresCluster::Shared();
    if (!shared.ok()) return shared.status();
    suite->cluster_ = *shared;
  }
  for (const char* svc : {"intake", "assessment", "shortage", "rwd", "gateway"}) {
    auto url = suite->cluster_->CreateDatabase(svc);
    if (!url.ok()) return url.status();
    suite->db_urls_[svc] = *url;
    suite->ports_[svc] = FreePort();
  }
  suite->http_port_ = FreePort();
  const std::string bin = BinaryDir();
  auto common_env = [&](const std::string& svc) {
    return std::map<std::string, std::string>{
        {"MEDKOORD_LISTEN", suite->service_addr(svc)},
        {"MEDKOORD_DB_URL", suite->db_urls_[svc]},
        {"MEDKOORD_DB_POOL_SIZE", "4"},
        {"MEDKOORD_PRINCIPAL_KEY", suite->principal_key_},
        {"MEDKOORD_SHUTDOWN_GRACE", "2s"},
        {"MEDKOORD_LOG_LEVEL", "warning"}};
  };
  std::map<std::string, std::map<std::string, std::string>> envs;
  envs["intake"] = common_env("intake");
  envs["intake"]["MEDKOORD_ASSESSMENT_ADDR"] = suite->service_addr("assessment");
  envs["assessment"] = common_env("assessment");
  envs["assessment"]["MEDKOORD_INTAKE_ADDR"] = suite->service_addr("intake");
  envs["shortage"] = common_env("shortage");
  envs["rwd"] = common_env("rwd");
  envs["rwd"]["MEDKOORD_PSEUDONYM_KEY"] = RandomHex(32);
  envs["gateway"] = common_env("gateway");
  for (const char* svc : {"intake", "assessment", "shortage", "rwd"}) {
    envs["gateway"][absl::StrCat("MEDKOORD_", absl::AsciiStrToUpper(svc), "_ADDR")] = suite->service_addr(svc);
  }
  envs["gateway"]["MEDKOORD_HTTP_LISTEN"] = absl::StrCat("127.0.0.1:", suite->http_port_);
  for (const auto& [k, v] : options.gateway_env) envs["gateway"][k] = v;
  if (options.tls) {
    const std::string d = suite->dir_;
    const std::string cmd = absl::StrCat(
        "cd ", d, " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=e2e-ca",
        " 2>/dev/null && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost",
        " 2>/dev/null && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > san.ext && openssl x509 -req -in server.csr",
        " -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null");
    if (std::system(cmd.c_str()) != 0) return absl::InternalError("openssl failed");
    suite->ca_file_ = d + "/ca.pem";
    if (options.mtls) {
      for (const char* who : {"client", "stranger"}) {
        const std::string cn = std::string(who) == "client" ? "mtls-admin" : "stranger";
        const std::string c = absl::StrCat(
            "cd ", d, " && openssl req -newkey rsa:2048 -nodes -keyout ", who, ".key -out ", who, ".csr -subj /CN=", cn,
            " 2>/dev/null && openssl x509 -req -in ", who, ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ", who,
            ".pem -days 2 2>/dev/null");
        if (std::system(c.c_str()) != 0) return absl::InternalError("openssl client cert failed");
      }
      std::ofstream(d + "/cert_map.json")
          << R"({"certificates": [{"subject": "CN=mtls-admin", "principal_id": "mtls-admin", "roles": ["admin"]}]})";
      envs["gateway"]["MEDKOORD_CLIENT_CA_FILE"] = d + "/ca.pem";
      envs["gateway"]["MEDKOORD_CERT_MAP_FILE"] = d + "/cert_map.json";
    }
    envs["gateway"]["MEDKOORD_TLS_CERT_FILE"] = d + "/server.pem";
    envs["gateway"]["MEDKOORD_TLS_KEY_FILE"] = d + "/server.key";
  }
  suite->envs_ = envs;
  for (const char* svc : {"intake", "assessment", "shortage", "rwd", "gateway"}) {
    const std::string binary = absl::StrCat(bin, "/services/", svc, "/", svc);
    auto p = suite->Launch(svc, binary, envs[svc]);
    if (!p.ok()) return p.status();
    suite->processes_.push_back(*p);
  }
  for (const char* svc : {"intake", "assessment", "shortage", "rwd", "gateway"}) {
    absl::Status s = suite->WaitServing(svc, suite->service_addr(svc));
    if (!s.ok()) return s;
  }
  return suite;
}

absl::StatusOr<std::string> Suite::CreateKey(const std::string& principal_id, const std::string& roles,
                                             const std::string& region) const {
  std::vector<std::string> argv = {BinaryDir() + "/services/gateway/gateway", "--create_api_key=" + principal_id,
                                   "--roles=" + roles};
  if (!region.empty()) argv.push_back("--region=" + region);
  auto out = RunCapture(argv, {{"MEDKOORD_DB_URL", db_urls_.at("gateway")}, {"MEDKOORD_LOG_LEVEL", "error"}});
  if (!out.ok()) return out.status();
  std::string key = *out;
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  return key;
}

void Suite::SignalAndReap(const std::string& name, int signal) {
  for (auto& p : processes_) {
    if (p.name == name && p.pid > 0) {
      kill(p.pid, signal);
      waitpid(p.pid, nullptr, 0);
      p.pid = -1;
    }
  }
}

absl::Status Suite::LoadDemoData(const std::string& api_key) const {
  // rwd-demo-load (40-rwd-pilots) seeds the pilots straight at the service
  // with a signed principal, as in the local suite: it reads the key file.
  const std::string principal_key_file = dir_ + "/principal.key";
  std::ofstream(principal_key_file) << principal_key_ << "\n";
  std::string env = absl::StrCat(
      "MEDKOORD_ADDR=", gateway_addr(), " MEDKOORD_CA_FILE=", ShellQuote(ca_file_),
      " MEDKOORD_API_KEY=", ShellQuote(api_key), " MEDKOORD_REPO_ROOT=", ShellQuote(MEDKOORD_SOURCE_DIR),
      " MEDKOORD_BUILD_DIR=", ShellQuote(BinaryDir()), " MEDKOORD_CLI=", ShellQuote(BinaryDir() + "/tools/medkoord/medkoord"),
      " MEDKOORD_PRINCIPAL_KEY_FILE=", ShellQuote(principal_key_file));
  for (const char* svc : {"intake", "assessment", "shortage", "rwd"}) {
    absl::StrAppend(&env, " MEDKOORD_", absl::AsciiStrToUpper(svc), "_ADDR=", service_addr(svc));
  }
  std::vector<std::string> loaders;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(MEDKOORD_SOURCE_DIR) + "/deploy/local/demo.d")) {
    if (entry.path().filename().string()[0] != '.') loaders.push_back(entry.path().string());
  }
  std::sort(loaders.begin(), loaders.end());
  // Run from the suite's folder, so that the CLI finds no .medkoord/local.env
  // of a local suite in the checkout.
  for (const std::string& loader : loaders) {
    const std::string cmd = absl::StrCat("cd ", ShellQuote(dir_), " && env ", env, " ", ShellQuote(loader), " >>",
                                         ShellQuote(dir_ + "/demo.log"), " 2>&1 </dev/null");
    if (std::system(cmd.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("demo loader ", loader, " failed; see ", dir_,
                                              "/demo.log (MEDKOORD_E2E_KEEP=1 keeps it)"));
    }
  }
  return absl::OkStatus();
}

pid_t Suite::pid(const std::string& name) const {
  for (const Process& p : processes_) {
    if (p.name == name) return p.pid;
  }
  return -1;
}

void Suite::Stop(const std::string& name) { SignalAndReap(name, SIGTERM); }

void Suite::Kill(const std::string& name) { SignalAndReap(name, SIGKILL); }

absl::Status Suite::Restart(const std::string& name, absl::Duration timeout) {
  auto it = std::find_if(processes_.begin(), processes_.end(), [&](const Process& p) { return p.name == name; });
  if (it == processes_.end()) return absl::NotFoundError(absl::StrCat("no process ", name));
  if (it->pid > 0) return absl::FailedPreconditionError(absl::StrCat(name, " is running"));
  // Keep the earlier run's log for diagnosis; the new run writes a fresh one.
  std::error_code ec;
  std::filesystem::rename(it->log_file, absl::StrCat(it->log_file, ".", absl::ToUnixMillis(absl::Now())), ec);
  auto p = Launch(name, absl::StrCat(BinaryDir(), "/services/", name, "/", name), envs_.at(name));
  if (!p.ok()) return p.status();
  *it = *p;
  return WaitServing(name, service_addr(name), timeout);
}

Suite::~Suite() {
  for (auto it = processes_.rbegin(); it != processes_.rend(); ++it) {
    if (it->pid > 0) kill(it->pid, SIGTERM);
  }
  for (auto& p : processes_) {
    if (p.pid > 0) waitpid(p.pid, nullptr, 0);
  }
  if (getenv("MEDKOORD_E2E_KEEP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace medkoord::e2e
