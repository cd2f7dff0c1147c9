// medkoord-healthcheck --addr host:port [--service NAME] [--timeout 30s]
//                      [--tls --ca-file F [--cert-file F --key-file F]
//                       [--server-name NAME]]
//
// Calls grpc.health.v1.Health/Check until it answers SERVING (exit 0) or the
// timeout passes (exit 1, printing the last answer). Exit 2 for bad usage.

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

struct Options {
  std::string addr;
  std::string service;
  absl::Duration timeout = absl::Seconds(30);
  bool tls = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
};

int Usage(const std::string& problem) {
  std::cerr << "medkoord-healthcheck: " << problem << "\n"
            << "usage: medkoord-healthcheck --addr host:port [--service NAME] [--timeout 30s]\n"
            << "         [--tls --ca-file F [--cert-file F --key-file F] [--server-name NAME]]\n";
  return 2;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    auto next = [&]() -> bool {
      if (eq != std::string::npos) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (arg == "--tls") {
      opt.tls = true;
      continue;
    }
    if (arg != "--addr" && arg != "--service" && arg != "--timeout" && arg != "--ca-file" &&
        arg != "--cert-file" && arg != "--key-file" && arg != "--server-name") {
      return Usage("unknown argument " + arg);
    }
    if (!next()) return Usage(arg + " needs a value");
    if (arg == "--addr") opt.addr = value;
    if (arg == "--service") opt.service = value;
    if (arg == "--ca-file") opt.ca_file = value;
    if (arg == "--cert-file") opt.cert_file = value;
    if (arg == "--key-file") opt.key_file = value;
    if (arg == "--server-name") opt.server_name = value;
    if (arg == "--timeout" && !absl::ParseDuration(value, &opt.timeout)) {
      return Usage("--timeout: not a duration: " + value);
    }
  }
  if (opt.addr.empty()) return Usage("--addr is required");

  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (opt.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!opt.ca_file.empty() && !ReadFile(opt.ca_file, &ssl.pem_root_certs)) {
      return Usage("cannot read --ca-file " + opt.ca_file);
    }
    if (!opt.cert_file.empty() && (!ReadFile(opt.cert_file, &ssl.pem_cert_chain) ||
                                   !ReadFile(opt.key_file, &ssl.pem_private_key))) {
      return Usage("cannot read --cert-file / --key-file");
    }
    creds = grpc::SslCredentials(ssl);
    if (!opt.server_name.empty()) args.SetSslTargetNameOverride(opt.server_name);
  }
  auto channel = grpc::CreateCustomChannel(opt.addr, creds, args);
  auto stub = grpc::health::v1::Health::NewStub(channel);

  const absl::Time deadline = absl::Now() + opt.timeout;
  std::string last = "no answer";
  while (true) {
    grpc::ClientContext ctx;
    absl::Time call_deadline = std::min(deadline, absl::Now() + absl::Seconds(2));
    ctx.set_deadline(absl::ToChronoTime(call_deadline));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(opt.service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status status = stub->Check(&ctx, req, &resp);
    if (status.ok()) {
      last = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
      if (resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        std::cout << opt.addr << ": SERVING\n";
        return 0;
      }
    } else {
      last = absl::StrCat("rpc error ", status.error_code(), ": ", status.error_message());
    }
    if (absl::Now() >= deadline) break;
    // Starting services: try again shortly.
    absl::SleepFor(std::min(absl::Milliseconds(200), deadline - absl::Now()));
  }
  std::cerr << opt.addr << ": not SERVING within " << absl::FormatDuration(opt.timeout) << " (" << last << ")\n";
  return 1;
}
