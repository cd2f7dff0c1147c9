// Serves Echo until SIGTERM; prints the port on stdout once listening.
#include <cstdio>

#include "common/server.h"
#include "echo_service.h"

int main() {
  medkoord::InstallSignalHandlers();
  medkoord::testing::EchoService echo(nullptr, [] {
    std::printf("entered\n");
    std::fflush(stdout);
  });
  medkoord::ServerOptions options;
  options.service_name = "echo";
  options.shutdown_grace = absl::Seconds(10);
  auto server = medkoord::Server::Start(options, {&echo});
  if (!server.ok()) return 1;
  std::printf("%d\n", (*server)->port());
  std::fflush(stdout);
  (*server)->Wait();
  return 0;
}
