#include "tests/e2e/e2e_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <grpcpp/generic/generic_stub.h>
#include <pqxx/pqxx>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace medkoord::e2e {
namespace {

bool Next(grpc::CompletionQueue& cq) {
  void* tag;
  bool ok = false;
  return cq.Next(&tag, &ok) && ok;
}

}  // namespace

CallResult CallGeneric(grpc::Channel& channel, const std::string& method, const std::string& key,
                       const std::string& request, absl::Duration timeout, bool client_streaming) {
  CallResult out;
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  if (timeout != absl::InfiniteDuration()) ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  if (!key.empty()) ctx.AddMetadata("authorization", "Bearer " + key);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, method, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  if (Next(cq)) {
    bool ok = true;
    if (!client_streaming || !request.empty()) {
      grpc::Slice slice(request);
      grpc::ByteBuffer buf(&slice, 1);
      call->Write(buf, reinterpret_cast<void*>(2));
      ok = Next(cq);
    }
    if (ok) {
      call->WritesDone(reinterpret_cast<void*>(3));
      Next(cq);
    }
    while (true) {
      grpc::ByteBuffer in;
      call->Read(&in, reinterpret_cast<void*>(4));
      if (!Next(cq)) break;
      ++out.messages;
    }
  }
  call->Finish(&out.status, reinterpret_cast<void*>(5));
  Next(cq);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

std::map<std::string, long> RowCounts(const std::map<std::string, std::string>& db_urls) {
  std::map<std::string, long> out;
  for (const auto& [svc, url] : db_urls) {
    pqxx::connection c(url);
    pqxx::work tx(c);
    auto tables = tx.exec(
        "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'");
    for (const auto& row : tables) {
      const std::string t = row[0].as<std::string>();
      out[svc + ":" + t] = tx.exec1("SELECT count(*) FROM " + t)[0].as<long>();
    }
  }
  return out;
}

Health CheckHealth(grpc::Channel& channel, absl::Duration timeout) {
  auto stub = grpc::health::v1::Health::NewStub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  if (!stub->Check(&ctx, req, &resp).ok()) return Health::kUnreachable;
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? Health::kServing : Health::kNotServing;
}

const char* HealthName(Health health) {
  switch (health) {
    case Health::kServing:
      return "SERVING";
    case Health::kNotServing:
      return "NOT_SERVING";
    case Health::kUnreachable:
      return "unreachable";
  }
  return "?";
}

std::pair<int, std::string> HttpGet(int port, const std::string& path, const std::string& authorization) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return {0, ""};
  }
  std::string req = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
  if (!authorization.empty()) absl::StrAppend(&req, "Authorization: ", authorization, "\r\n");
  req += "\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) resp.append(buf, n);
  close(fd);
  int code = 0;
  if (resp.size() > 12) (void)absl::SimpleAtoi(resp.substr(9, 3), &code);
  const size_t body = resp.find("\r\n\r\n");
  return {code, body == std::string::npos ? "" : resp.substr(body + 4)};
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::pair<int, std::string> RunCommand(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

absl::Duration ProcessCpu(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line) || line.rfind(')') == std::string::npos) return absl::ZeroDuration();
  // "pid (comm) state ..." with utime and stime the 14th and 15th fields;
  // comm may contain spaces, so count from the closing parenthesis.
  std::istringstream rest(line.substr(line.rfind(')') + 1));
  std::string skip;
  for (int field = 3; field <= 13; ++field) rest >> skip;
  long long utime = 0, stime = 0;
  rest >> utime >> stime;
  return absl::Seconds(static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK));
}

}  // namespace medkoord::e2e
