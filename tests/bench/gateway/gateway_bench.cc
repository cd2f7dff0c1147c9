// Gateway overhead: the same unary read (Intake.GetApplication) from the same
// client at the same concurrency, straight to intake (with a principal signed
// by the client) and through the gateway (API key), in one run, with the
// gateway's TLS off and on. Prints throughput, the ratio and medians.
//
// Then a streaming import (ImportApplications, CSV in 64 KiB chunks) of the
// 541-row fixture and of a large synthetic file, straight and via the
// gateway. Next to them, pass-through floor proxies (floor_proxy.cc) show
// what one extra loopback gRPC hop costs with no gateway logic at all.
//
//   gateway_bench [--seconds=5] [--rounds=2] [--concurrency=16] [--import_rows=20000]
//                 [--tls=off|on] [--gateway_env=MEDKOORD_NAME=VALUE ...]
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
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/principal.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/suite.h"

namespace {

using namespace medkoord;
namespace iv1 = medkoord::intake::v1;

struct Result {
  double calls_per_s = 0;
  double median_us = 0;
  double p99_us = 0;
  int errors = 0;
  double cpu_us_per_call = 0;  // of the proxy process, when measured
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

// The fixture's rows with case refs made unique by `prefix`, repeated until
// `rows` rows (0: the fixture once).
std::string ImportFile(const std::string& fixture, const std::string& prefix, int rows) {
  std::ifstream in(fixture);
  std::string header, line;
  std::getline(in, header);
  std::vector<std::string> body;  // each row without its case_ref (the first column)
  while (std::getline(in, line)) {
    if (!line.empty()) body.push_back(line.substr(line.find(',')));
  }
  if (rows <= 0) rows = static_cast<int>(body.size());
  std::string out = header + "\n";
  for (int i = 0; i < rows; ++i) absl::StrAppend(&out, prefix, i, body[i % body.size()], "\n");
  return out;
}

struct ImportResult {
  double rows_per_s = 0;
  double seconds = 0;
  int64_t stored = 0;
  std::string error;
};

// One ImportApplications call streaming `csv` in 64 KiB chunks.
template <typename Prepare>
ImportResult Import(std::shared_ptr<grpc::Channel> channel, const std::string& csv, Prepare prepare) {
  auto stub = iv1::Intake::NewStub(channel);
  grpc::ClientContext ctx;
  prepare(ctx);
  iv1::ImportApplicationsResponse resp;
  const absl::Time start = absl::Now();
  auto writer = stub->ImportApplications(&ctx, &resp);
  constexpr size_t kChunk = 64 << 10;
  for (size_t at = 0; at < csv.size(); at += kChunk) {
    iv1::ImportApplicationsRequest req;
    req.set_chunk(csv.substr(at, kChunk));
    if (!writer->Write(req)) break;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  ImportResult r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  r.stored = resp.stored();
  if (!status.ok()) r.error = status.error_message();
  r.rows_per_s = static_cast<double>(resp.rows_read()) / r.seconds;
  return r;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// One line per path: the medians over the rounds of each round's figures, so
// that one disturbed round (a shared machine) does not move the result, and
// the range of the per-round added median and ratio next to them.
void Print(const char* what, bool tls, int concurrency, const std::vector<Result>& d, const std::vector<Result>& g) {
  std::vector<double> dc, dm, dp, gc, gm, gp, ratio, added, cpu;
  int d_errors = 0, g_errors = 0;
  for (size_t i = 0; i < d.size() && i < g.size(); ++i) {
    dc.push_back(d[i].calls_per_s), dm.push_back(d[i].median_us), dp.push_back(d[i].p99_us);
    gc.push_back(g[i].calls_per_s), gm.push_back(g[i].median_us), gp.push_back(g[i].p99_us);
    ratio.push_back(d[i].calls_per_s > 0 ? g[i].calls_per_s / d[i].calls_per_s : 0);
    added.push_back(g[i].median_us - d[i].median_us);
    cpu.push_back(g[i].cpu_us_per_call);
    d_errors += d[i].errors, g_errors += g[i].errors;
  }
  const auto [rmin, rmax] = std::minmax_element(ratio.begin(), ratio.end());
  const auto [amin, amax] = std::minmax_element(added.begin(), added.end());
  std::printf("%-22s TLS %-3s c=%-2d: direct %.0f calls/s (median %.0f us, p99 %.0f us), "
              "via %.0f calls/s (median %.0f us, p99 %.0f us); ratio %.2f [%.2f..%.2f]; added median %.0f us "
              "[%.0f..%.0f]; %zu rounds; errors %d/%d%s\n",
              what, tls ? "on" : "off", concurrency, Median(dc), Median(dm), Median(dp), Median(gc), Median(gm),
              Median(gp), Median(ratio), *rmin, *rmax, Median(added), *amin, *amax, ratio.size(), d_errors, g_errors,
              Median(cpu) > 0 ? absl::StrFormat("; proxy CPU %.0f us per call", Median(cpu)).c_str() : "");
  std::fflush(stdout);
}

// Extra gateway settings from the command line (--gateway_env=NAME=VALUE).
std::map<std::string, std::string>& ExtraGatewayEnv() {
  static auto* env = new std::map<std::string, std::string>();
  return *env;
}

int RunOnce(bool tls, int concurrency, absl::Duration length, int rounds, int import_rows) {
  e2e::SuiteOptions options;
  options.tls = tls;
  options.gateway_env = {{"MEDKOORD_RATE_LIMIT_PER_SECOND", "1000000000"},
                         {"MEDKOORD_RATE_LIMIT_BURST", "1000000000"}};
  for (const auto& [k, v] : ExtraGatewayEnv()) options.gateway_env[k] = v;
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

  // Direct and each proxied path alternate, round after round, so drift on
  // a shared machine hits all of them.
  std::vector<Result> d, g;
  std::map<std::string, std::vector<Result>> f;
  for (int round = 0; round < rounds; ++round) {
    d.push_back(Drive(direct, created.name(), concurrency, length, sign));
    const absl::Duration cpu_before = e2e::ProcessCpu((*suite)->pid("gateway"));
    g.push_back(Drive(gateway, created.name(), concurrency, length, keyed));
    // The warm-up second is in the CPU time but not in the calls counted.
    const double calls = g.back().calls_per_s * (absl::ToDoubleSeconds(length) + 1);
    if (calls > 0) {
      g.back().cpu_us_per_call =
          absl::ToDoubleMicroseconds(e2e::ProcessCpu((*suite)->pid("gateway")) - cpu_before) / calls;
    }
    for (auto& [mode, channel] : floors) f[mode].push_back(Drive(channel, created.name(), concurrency, length, sign));
  }
  Print("gateway", tls, concurrency, d, g);
  for (auto& [mode, channel] : floors) Print(absl::StrCat("floor proxy (", mode, ")").c_str(), tls, concurrency, d, f[mode]);
  if (import_rows < 0) return 0;

  // Streaming import (client streaming, CSV chunks) straight to intake and
  // through the gateway: the fixture twice each way, alternating, then one
  // large synthetic file each way. Case refs are fresh for every import, so
  // every row is stored.
  const std::string fixture = std::string(MEDKOORD_FIXTURES_DIR) + "/forum_cases_2024.csv";
  const std::string import_method = "/medkoord.intake.v1.Intake/ImportApplications";
  auto sign_import = [&](grpc::ClientContext& c) { signer->Attach(c, p, import_method, absl::Minutes(10)); };
  int run = 0;
  auto one = [&](bool via_gateway, int rows) {
    const std::string csv = ImportFile(fixture, absl::StrCat(tls ? "T" : "P", run++, "-"), rows);
    ImportResult r = via_gateway ? Import(gateway, csv, keyed) : Import(direct, csv, sign_import);
    if (!r.error.empty()) std::fprintf(stderr, "import: %s\n", r.error.c_str());
    return r;
  };
  auto report = [&](const char* what, const ImportResult& d, const ImportResult& g) {
    std::printf("import %-16s TLS %-3s: direct %.0f rows/s (%.2f s, stored %lld), via gateway %.0f rows/s (%.2f s, "
                "stored %lld); ratio %.2f\n",
                what, tls ? "on" : "off", d.rows_per_s, d.seconds, static_cast<long long>(d.stored), g.rows_per_s,
                g.seconds, static_cast<long long>(g.stored), g.rows_per_s / d.rows_per_s);
    std::fflush(stdout);
  };
  ImportResult fd[2], fg[2];
  for (int i = 0; i < 2; ++i) {
    fd[i] = one(false, 0);
    fg[i] = one(true, 0);
  }
  auto avg_import = [](const ImportResult& x, const ImportResult& y) {
    return ImportResult{(x.rows_per_s + y.rows_per_s) / 2, (x.seconds + y.seconds) / 2, x.stored + y.stored, ""};
  };
  report("541-row fixture", avg_import(fd[0], fd[1]), avg_import(fg[0], fg[1]));
  if (import_rows > 0) {
    // Direct, gateway, gateway, direct: the outbox deliveries each import
    // sets off (to assessment) weigh on whichever import comes next.
    ImportResult d1 = one(false, import_rows);
    ImportResult g1 = one(true, import_rows);
    ImportResult g2 = one(true, import_rows);
    ImportResult d2 = one(false, import_rows);
    report(absl::StrCat(import_rows, " rows").c_str(), avg_import(d1, d2), avg_import(g1, g2));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, concurrency = 16, import_rows = 20000, rounds = 2;
  int tls_runs = 3;  // bit 1: TLS off, bit 2: TLS on
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--seconds=", 0) == 0) (void)absl::SimpleAtoi(a.substr(10), &seconds);
    if (a.rfind("--concurrency=", 0) == 0) (void)absl::SimpleAtoi(a.substr(14), &concurrency);
    if (a.rfind("--rounds=", 0) == 0) (void)absl::SimpleAtoi(a.substr(9), &rounds);
    // -1: no import runs; 0: only the fixture.
    if (a.rfind("--import_rows=", 0) == 0) (void)absl::SimpleAtoi(a.substr(14), &import_rows);
    // e.g. --gateway_env=MEDKOORD_PROXY_QUEUES=2
    if (a.rfind("--gateway_env=", 0) == 0 && a.find('=', 14) != std::string::npos) {
      const size_t eq = a.find('=', 14);
      ExtraGatewayEnv()[a.substr(14, eq - 14)] = a.substr(eq + 1);
    }
    // --tls=off|on: only that half.
    if (a == "--tls=off") tls_runs = 1;
    if (a == "--tls=on") tls_runs = 2;
  }
  int rc = 0;
  if (tls_runs & 1) rc |= RunOnce(false, concurrency, absl::Seconds(seconds), std::max(rounds, 1), import_rows);
  if (tls_runs & 2) rc |= RunOnce(true, concurrency, absl::Seconds(seconds), std::max(rounds, 1), import_rows);
  return rc;
}
