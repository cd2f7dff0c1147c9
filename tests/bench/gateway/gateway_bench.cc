// Gateway overhead: the same unary read (Intake.GetApplication) from the same
// client at the same concurrency, straight to intake (with a principal signed
// by the client) and through the gateway (API key), in one run, with the
// gateway's TLS off and on. Prints throughput, the ratio and medians.
//
//   gateway_bench [--seconds=5] [--concurrency=16]
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <map>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/principal.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "tests/e2e/suite.h"

namespace {

using namespace medkoord;
namespace iv1 = medkoord::intake::v1;

struct Result {
  double calls_per_s = 0;
  double median_us = 0;
  double p99_us = 0;
  int errors = 0;
};

template <typename Prepare>
Result Drive(std::shared_ptr<grpc::Channel> channel, const std::string& name, int concurrency, absl::Duration length,
             Prepare prepare) {
  std::vector<std::vector<double>> lat(concurrency);
  std::atomic<int> errors{0};
  const absl::Time warm_until = absl::Now() + absl::Seconds(1);
  const absl::Time until = warm_until + length;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      auto stub = iv1::Intake::NewStub(channel);
      iv1::GetApplicationRequest req;
      req.set_name(name);
      while (true) {
        const absl::Time start = absl::Now();
        if (start >= until) break;
        grpc::ClientContext ctx;
        prepare(ctx);
        iv1::Application out;
        grpc::Status s = stub->GetApplication(&ctx, req, &out);
        const absl::Time end = absl::Now();
        if (!s.ok()) ++errors;
        if (start >= warm_until) lat[t].push_back(absl::ToDoubleMicroseconds(end - start));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Result r;
  r.errors = errors;
  if (all.empty()) return r;
  r.calls_per_s = all.size() / absl::ToDoubleSeconds(length);
  r.median_us = all[all.size() / 2];
  r.p99_us = all[all.size() * 99 / 100];
  return r;
}

// Starts the pass-through floor proxy (floor_proxy.cc) in `mode` in front of
// `backend`; its address, or "" if it did not come up.
std::string StartFloorProxy(const std::string& mode, const std::string& backend, const std::string& dir) {
  const std::string port_file = absl::StrCat(dir, "/floor_", mode, ".port");
  const std::string binary = absl::StrCat(MEDKOORD_BINARY_DIR, "/tests/bench/gateway/gateway_floor_proxy");
  const std::string a1 = "--mode=" + mode, a2 = "--backend=" + backend, a3 = "--port_file=" + port_file;
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execl(binary.c_str(), binary.c_str(), a1.c_str(), a2.c_str(), a3.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return absl::StrCat("127.0.0.1:", port);
    absl::SleepFor(absl::Milliseconds(20));
  }
  return "";
}

void Print(const char* what, bool tls, int concurrency, const Result& d, const Result& g) {
  std::printf("%-22s TLS %-3s c=%-2d: direct %.0f calls/s (median %.0f us, p99 %.0f us), "
              "via %.0f calls/s (median %.0f us, p99 %.0f us); ratio %.2f; added median %.0f us; errors %d/%d\n",
              what, tls ? "on" : "off", concurrency, d.calls_per_s, d.median_us, d.p99_us, g.calls_per_s, g.median_us,
              g.p99_us, g.calls_per_s / d.calls_per_s, g.median_us - d.median_us, d.errors, g.errors);
  std::fflush(stdout);
}

int RunOnce(bool tls, int concurrency, absl::Duration length) {
  e2e::SuiteOptions options;
  options.tls = tls;
  options.gateway_env = {{"MEDKOORD_RATE_LIMIT_PER_SECOND", "1000000000"},
                         {"MEDKOORD_RATE_LIMIT_BURST", "1000000000"}};
  auto suite = e2e::Suite::Start(options);
  if (!suite.ok()) {
    std::fprintf(stderr, "suite: %s\n", std::string(suite.status().message()).c_str());
    return 1;
  }
  auto key = (*suite)->CreateKey("bench-secretariat", "forum_secretariat");
  if (!key.ok()) return 1;
  auto gateway = (*suite)->GatewayChannel();
  auto intake = iv1::Intake::NewStub(gateway);
  iv1::SubmitApplicationRequest submit;
  submit.set_request_id("bench-1");
  auto* a = submit.mutable_application();
  a->set_case_ref("BENCH-0001");
  a->set_region(medkoord::common::v1::REGION_SYDDANMARK);
  a->mutable_submitted_on()->set_year(2024);
  a->mutable_submitted_on()->set_month(3);
  a->mutable_submitted_on()->set_day(5);
  a->set_drug_name("ibrutinib");
  a->set_atc_code("L01EL01");
  a->set_indication("mantle cell lymphoma");
  a->set_cancer(true);
  a->set_marketed_dk(true);
  a->set_medicinraadet_status(iv1::MEDICINRAADET_STATUS_NOT_ASSESSED);
  a->set_ema_status(iv1::EMA_STATUS_ON_LABEL);
  iv1::Application created;
  grpc::ClientContext ctx;
  e2e::Authorize(ctx, *key);
  grpc::Status s = intake->SubmitApplication(&ctx, submit, &created);
  if (!s.ok()) {
    std::fprintf(stderr, "submit: %s\n", s.error_message().c_str());
    return 1;
  }
  auto signer = PrincipalSigner::Create((*suite)->principal_key());
  Principal p;
  p.set_id("bench-secretariat");
  p.add_roles(medkoord::common::v1::ROLE_FORUM_SECRETARIAT);
  const std::string method = "/medkoord.intake.v1.Intake/GetApplication";
  auto direct = grpc::CreateChannel((*suite)->service_addr("intake"), grpc::InsecureChannelCredentials());

  auto sign = [&](grpc::ClientContext& c) { signer->Attach(c, p, method); };
  auto keyed = [&](grpc::ClientContext& c) { e2e::Authorize(c, *key); };
  // The floor: trivial pass-through proxies (plain text) in front of intake.
  std::map<std::string, std::shared_ptr<grpc::Channel>> floors;
  if (!tls) {
    for (const char* mode : {"callback", "async"}) {
      const std::string addr = StartFloorProxy(mode, (*suite)->service_addr("intake"), (*suite)->dir());
      if (!addr.empty()) floors[mode] = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    }
  }

  // Direct and each proxied path alternate twice so drift on a shared machine
  // hits all of them.
  Result d[2], g[2];
  std::map<std::string, Result> f[2];
  for (int round = 0; round < 2; ++round) {
    d[round] = Drive(direct, created.name(), concurrency, length, sign);
    g[round] = Drive(gateway, created.name(), concurrency, length, keyed);
    for (auto& [mode, channel] : floors) f[round][mode] = Drive(channel, created.name(), concurrency, length, sign);
  }
  auto avg = [](const Result& x, const Result& y) {
    return Result{(x.calls_per_s + y.calls_per_s) / 2, (x.median_us + y.median_us) / 2, (x.p99_us + y.p99_us) / 2,
                  x.errors + y.errors};
  };
  const Result dd = avg(d[0], d[1]);
  Print("gateway", tls, concurrency, dd, avg(g[0], g[1]));
  for (auto& [mode, channel] : floors) {
    Print(absl::StrCat("floor proxy (", mode, ")").c_str(), tls, concurrency, dd, avg(f[0][mode], f[1][mode]));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, concurrency = 16;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--seconds=", 0) == 0) (void)absl::SimpleAtoi(a.substr(10), &seconds);
    if (a.rfind("--concurrency=", 0) == 0) (void)absl::SimpleAtoi(a.substr(14), &concurrency);
  }
  int rc = RunOnce(false, concurrency, absl::Seconds(seconds));
  rc |= RunOnce(true, concurrency, absl::Seconds(seconds));
  return rc;
}
