#include "common/server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/reflection_client.h"
#include "common/service_main.h"
#include "common/status.h"
#include "echo_service.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "nlohmann/json.hpp"

namespace medkoord {
namespace {

using ::testing::Contains;
using grpc::health::v1::HealthCheckResponse;

const std::string kKey(32, 'k');

std::shared_ptr<grpc::Channel> Channel(int port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
}

// Starts `service` as the "echo" server; `log_signer` verifies principals
// for the access log.
absl::StatusOr<std::unique_ptr<Server>> StartEcho(grpc::Service& service, const PrincipalSigner* log_signer = nullptr) {
  ServerOptions options;
  options.service_name = "echo";
  options.signer = log_signer;
  return Server::Start(std::move(options), {&service});
}

HealthCheckResponse::ServingStatus Health(int port) {
  auto stub = grpc::health::v1::Health::NewStub(Channel(port));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest req;
  HealthCheckResponse resp;
  grpc::Status s = stub->Check(&ctx, req, &resp);
  return s.ok() ? resp.status() : HealthCheckResponse::UNKNOWN;
}

TEST(ServerTest, HealthFollowsReadiness) {
  std::atomic<bool> ready{false};
  testing::EchoService echo(nullptr);
  ServerOptions options;
  options.service_name = "echo";
  options.readiness = [&] { return ready ? absl::OkStatus() : absl::UnavailableError("db down"); };
  options.readiness_interval = absl::Milliseconds(20);
  auto server = Server::Start(options, {&echo});
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_EQ(Health(port), HealthCheckResponse::NOT_SERVING);
  ready = true;
  for (int i = 0; i < 250 && Health(port) != HealthCheckResponse::SERVING; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Health(port), HealthCheckResponse::SERVING);
  ready = false;
  for (int i = 0; i < 250 && Health(port) != HealthCheckResponse::NOT_SERVING; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Health(port), HealthCheckResponse::NOT_SERVING);
}

TEST(ServerTest, ListsServicesThroughReflection) {
  testing::EchoService echo(nullptr);
  auto server = StartEcho(echo);
  ASSERT_TRUE(server.ok());
  auto names = ListServicesByReflection(Channel((*server)->port()));
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, Contains("medkoord.testing.v1.Echo"));
  EXPECT_THAT(*names, Contains("grpc.health.v1.Health"));
}

TEST(ServerTest, HandlerRefusesMissingOrForgedPrincipal) {
  auto signer = *PrincipalSigner::Create(kKey);
  testing::EchoService echo(&signer);
  auto server = StartEcho(echo, &signer);
  ASSERT_TRUE(server.ok());
  auto stub = medkoord::testing::v1::Echo::NewStub(Channel((*server)->port()));
  const std::string method = FullMethodName(medkoord::testing::v1::Echo::service_full_name(), "Echo");
  medkoord::testing::v1::EchoRequest req;
  req.set_text("hi");
  {
    grpc::ClientContext ctx;
    medkoord::testing::v1::EchoResponse resp;
    EXPECT_EQ(stub->Echo(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    auto forger = *PrincipalSigner::Create(std::string(32, 'f'));
    forger.Attach(ctx, ServicePrincipal("mallory"), method);
    medkoord::testing::v1::EchoResponse resp;
    EXPECT_EQ(stub->Echo(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    signer.Attach(ctx, ServicePrincipal("intake"), method);
    medkoord::testing::v1::EchoResponse resp;
    ASSERT_TRUE(stub->Echo(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.principal_id(), "service:intake");
  }
}

// The principal fields of the access-log lines in `log`.
std::vector<std::string> LoggedPrincipals(const std::string& log) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < log.size()) {
    size_t end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(start, end - start);
    start = end + 1;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("msg", "") == "rpc") out.push_back(j.value("principal", "?"));
  }
  return out;
}

TEST(ServerTest, AccessLogNamesThePrincipalTheHandlerVerified) {
  auto signer = *PrincipalSigner::Create(kKey);
  const std::string method = FullMethodName(medkoord::testing::v1::Echo::service_full_name(), "Echo");
  auto call = [&](int port, const PrincipalSigner& by) {
    auto stub = medkoord::testing::v1::Echo::NewStub(Channel(port));
    grpc::ClientContext ctx;
    by.Attach(ctx, ServicePrincipal("intake"), method);
    medkoord::testing::v1::EchoRequest req;
    medkoord::testing::v1::EchoResponse resp;
    return stub->Echo(&ctx, req, &resp).error_code();
  };
  auto forger = *PrincipalSigner::Create(std::string(32, 'f'));
  {
    // No signer for the log: it names what the handler noted, on the
    // handler's thread while it runs.
    testing::EchoService echo(&signer, [] { NoteVerifiedPrincipal("noted-by-handler"); });
    auto server = StartEcho(echo);
    ASSERT_TRUE(server.ok());
    NoteVerifiedPrincipal("not in a call");  // no call on this thread: ignored
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(call((*server)->port(), signer), grpc::StatusCode::OK);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(LoggedPrincipals(log), ::testing::ElementsAre("noted-by-handler")) << log;
  }
  {
    // A handler that notes nothing: the log verifies the principal itself.
    testing::EchoService echo(&signer);
    auto server = StartEcho(echo, &signer);
    ASSERT_TRUE(server.ok());
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(call((*server)->port(), signer), grpc::StatusCode::OK);
    EXPECT_EQ(call((*server)->port(), forger), grpc::StatusCode::UNAUTHENTICATED);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(LoggedPrincipals(log), ::testing::ElementsAre("service:intake", "")) << log;
  }
}

TEST(ServerTest, ShutdownLetsInFlightCallFinish) {
  absl::Notification entered;
  testing::EchoService echo(nullptr, [&] { entered.Notify(); });
  ServerOptions options;
  options.service_name = "echo";
  options.shutdown_grace = absl::Seconds(10);
  auto server = Server::Start(options, {&echo});
  ASSERT_TRUE(server.ok());
  auto stub = medkoord::testing::v1::Echo::NewStub(Channel((*server)->port()));
  grpc::Status status;
  medkoord::testing::v1::EchoResponse resp;
  grpc::ClientContext ctx;
  std::thread call([&] {
    medkoord::testing::v1::EchoRequest req;
    req.set_text("slow");
    req.set_delay_ms(500);
    status = stub->Echo(&ctx, req, &resp);
  });
  entered.WaitForNotification();
  (*server)->Shutdown();
  call.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.text(), "slow");
}

// Live feeds end themselves in on_shutdown: it runs while calls are still in
// flight, before the grace wait, and exactly once.
TEST(ServerTest, OnShutdownRunsBeforeTheGraceWait) {
  absl::Notification entered;
  std::atomic<bool> call_finished{false};
  std::atomic<int> hook_calls{0};
  std::atomic<bool> call_in_flight_at_hook{false};
  testing::EchoService echo(nullptr, [&] { entered.Notify(); });
  ServerOptions options;
  options.service_name = "echo";
  options.shutdown_grace = absl::Seconds(10);
  options.on_shutdown = [&] {
    hook_calls++;
    call_in_flight_at_hook = !call_finished.load();
  };
  auto server = Server::Start(options, {&echo});
  ASSERT_TRUE(server.ok());
  auto stub = medkoord::testing::v1::Echo::NewStub(Channel((*server)->port()));
  std::thread call([&] {
    grpc::ClientContext ctx;
    medkoord::testing::v1::EchoRequest req;
    req.set_delay_ms(300);
    medkoord::testing::v1::EchoResponse resp;
    EXPECT_TRUE(stub->Echo(&ctx, req, &resp).ok());
    call_finished = true;
  });
  entered.WaitForNotification();
  (*server)->Shutdown();
  (*server)->Shutdown();
  call.join();
  EXPECT_EQ(hook_calls.load(), 1);
  EXPECT_TRUE(call_in_flight_at_hook.load());
}

constexpr char kTrace[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

// An Echo server that records the trace context its handler ran in.
class TraceRecordingServer {
 public:
  TraceRecordingServer() : echo_(nullptr, [this] { seen_ = log::CurrentTraceparent(); }) {
    auto server = StartEcho(echo_);
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = *std::move(server);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  // Calls Echo with `stub` and returns the trace the handler saw.
  std::string Call(medkoord::testing::v1::Echo::Stub& stub, grpc::ClientContext& ctx) {
    seen_ = "unset";
    medkoord::testing::v1::EchoRequest req;
    medkoord::testing::v1::EchoResponse resp;
    grpc::Status status = stub.Echo(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return seen_;
  }

 private:
  std::string seen_;
  testing::EchoService echo_;
  std::unique_ptr<Server> server_;
};

// The caller's traceparent is the handler thread's trace context (so it is on
// every log line and outbox row the handler writes), and only for that call.
TEST(ServerTest, HandlerRunsInTheCallersTraceContext) {
  TraceRecordingServer server;
  auto stub = medkoord::testing::v1::Echo::NewStub(grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("traceparent", kTrace);
    EXPECT_EQ(server.Call(*stub, ctx), kTrace);
  }
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(server.Call(*stub, ctx), "");
  }
}

// Service-to-service calls (outbox deliveries, lookups) on an InternalChannel
// carry the calling thread's trace context; a caller's own value wins.
TEST(ServerTest, InternalChannelPropagatesTheCurrentTrace) {
  TraceRecordingServer server;
  auto stub = medkoord::testing::v1::Echo::NewStub(InternalChannel(server.address()));
  {
    log::ScopedTrace trace(kTrace);
    grpc::ClientContext ctx;
    EXPECT_EQ(server.Call(*stub, ctx), kTrace);
  }
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(server.Call(*stub, ctx), "");
  }
  {
    log::ScopedTrace trace(kTrace);
    grpc::ClientContext ctx;
    const std::string own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    ctx.AddMetadata("traceparent", own);
    EXPECT_EQ(server.Call(*stub, ctx), own);
  }
}

// The real process path: SIGTERM while a slow call is in flight lets the call
// finish, and the process exits 0.
TEST(ServerProcessTest, SigtermDrainsAndExitsZero) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    execl(ECHO_SERVER_PATH, ECHO_SERVER_PATH, nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  int port = 0;
  ASSERT_EQ(fscanf(f, "%d", &port), 1);
  auto stub = medkoord::testing::v1::Echo::NewStub(Channel(port));
  grpc::Status status;
  medkoord::testing::v1::EchoResponse resp;
  std::thread call([&] {
    grpc::ClientContext ctx;
    medkoord::testing::v1::EchoRequest req;
    req.set_text("in flight");
    req.set_delay_ms(1000);
    status = stub->Echo(&ctx, req, &resp);
  });
  char line[32] = "";
  ASSERT_EQ(fscanf(f, "%31s", line), 1);
  ASSERT_STREQ(line, "entered");
  kill(pid, SIGTERM);
  call.join();
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  fclose(f);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resp.text(), "in flight");
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace medkoord
