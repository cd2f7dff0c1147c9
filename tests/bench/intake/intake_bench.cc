// Load driver for docs/BENCHMARKS.md "Intake": the real intake service
// (store, handlers, gRPC, outbox writes) in process on a loopback port, driven
// through a real stub, against the PostgreSQL server given by --db_url.
//
//   intake_bench --db_url=URL --mode=submit [--clients=32] [--seconds=30] [--pool=16]
//                [--writers=4] [--max_batch=64] [--min_batch=4] [--max_wait_us=2000]   the group commit's bounds
//                [--client=callback|sync]          callback stubs (default) or a blocking thread per client
//                [--channels=4]                    connections the clients' calls are spread over
//                [--client_retries=off|on]         gRPC's retry machinery on the client channels (default off)
//                [--client_signatures=cached|per_call]  reuse a client's signed principal for 30 s (default), or sign each call
//                [--server_signer=on|off]          the access log verifies the principal, as in the service (on)
//   intake_bench --db_url=URL --mode=import --file=forum_cases_2024.csv
//   intake_bench --db_url=URL --mode=import --synthetic_rows=1000000
//   intake_bench --db_url=URL --mode=serve [--pool=16]     prints "PORT n", serves until stdin closes
//                [--after_migrate_sql=FILE]   schema experiments: SQL run once after the migrations
//   intake_bench --target=127.0.0.1:n --mode=submit ...    clients only, against a serving process
//
// The database must be empty (the script creates a fresh one per mode).
// Prints one RESULT line and the CPU time this process used (user + system),
// so that the server's and the clients' costs per call can be told apart
// when they run as two processes. Peak memory is this process's maximum
// resident set; PostgreSQL's own memory is not included.

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "common/server.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "services/intake/intake_service.h"
#include "services/intake/intake_store.h"
#include "services/intake/migrations.h"

namespace {

namespace v1 = ::medkoord::intake::v1;
using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> Args(int argc, char** argv) {
  std::map<std::string, std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    auto eq = a.find('=');
    out[a.substr(2, eq - 2)] = eq == std::string::npos ? "true" : a.substr(eq + 1);
  }
  return out;
}

long PeakRssKiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

medkoord::Principal RegionPrincipal(int i) {
  static const medkoord::Region kRegions[] = {
      medkoord::common::v1::REGION_HOVEDSTADEN, medkoord::common::v1::REGION_MIDTJYLLAND,
      medkoord::common::v1::REGION_SYDDANMARK, medkoord::common::v1::REGION_SJAELLAND,
      medkoord::common::v1::REGION_NORDJYLLAND};
  medkoord::Principal p;
  p.add_roles(medkoord::common::v1::ROLE_REGION);
  p.set_region(kRegions[i % 5]);
  p.set_id(absl::StrFormat("bench-region-%d", i % 5));
  return p;
}

// A synthetic Forum export of `rows` cases, produced chunk by chunk.
class SyntheticFile {
 public:
  explicit SyntheticFile(int64_t rows) : rows_(rows) {}
  // Appends up to ~`bytes` of the file; false when done.
  bool Next(std::string& out, size_t bytes) {
    static const char* kRegions[] = {"hovedstaden", "midtjylland", "syddanmark", "sjaelland", "nordjylland"};
    static const char* kDrugs[][4] = {
        {"Trifluridine/tipiracil", "L01BC59", "Metastatic colorectal cancer", "C18.9"},
        {"Mepolizumab", "R03DX09", "Chronic rhinosinusitis with nasal polyps", "J33.9"},
        {"Immunoglobulin, normal human", "J06BA02", "Stiff person syndrome", "G25.8"},
        {"Ibrutinib", "L01EL01", "Mantle cell lymphoma", "C83.1"}};
    static const char* kOutcomes[] = {"recommended", "not_recommended", "not_concluded", ""};
    out.clear();
    if (next_ == 0) {
      out = "case_ref,region,submitted_on,drug_name,atc_code,indication,icd10,cancer,marketed_dk,"
            "medicinraadet_status,ema_status,outcome,decided_on\r\n";
    }
    while (out.size() < bytes && next_ < rows_) {
      const int64_t i = next_++;
      const auto& d = kDrugs[i % 4];
      const int day = static_cast<int>(i % 28) + 1, month = static_cast<int>(i / 28 % 12) + 1;
      const char* outcome = kOutcomes[i % 4];
      const bool decided = outcome[0] != '\0' && std::string(outcome) != "not_concluded";
      absl::StrAppendFormat(&out, "S-%08d,%s,2024-%02d-%02d,\"%s\",%s,%s,%s,%s,%s,%s,%s,%s,%s\r\n", i,
                            kRegions[i % 5], month, day, d[0], d[1], d[2], d[3], i % 3 ? "yes" : "no",
                            i % 5 ? "yes" : "no", i % 2 ? "not_assessed" : "rejected", i % 7 ? "on_label" : "off_label",
                            outcome, decided ? absl::StrFormat("2024-%02d-%02d", month, std::min(day + 1, 28)) : "");
    }
    return !out.empty();
  }

 private:
  int64_t rows_;
  int64_t next_ = 0;
};

// The group commit's batch sizes: "BATCH batches=n items=n mean=x largest=n
// sizes=1:n,2-3:n,4-7:n,...".
void PrintBatches(const medkoord::intake::IntakeStore& store) {
  const medkoord::intake::GroupCommitStats s = store.submit_batch_stats();
  std::string sizes;
  for (size_t k = 0; k < s.histogram.size(); ++k) {
    const long lo = 1L << k, hi = (2L << k) - 1;
    absl::StrAppendFormat(&sizes, "%s%s:%d", sizes.empty() ? "" : ",",
                          lo == hi ? absl::StrFormat("%d", lo) : absl::StrFormat("%d-%d", lo, hi), s.histogram[k]);
  }
  std::printf("BATCH batches=%lld items=%lld mean=%.1f largest=%zu sizes=%s\n", static_cast<long long>(s.batches),
              static_cast<long long>(s.items), s.batches ? double(s.items) / s.batches : 0.0, s.largest,
              sizes.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // As in the service processes (common/service_main.cc): no deadlock graph.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto args = Args(argc, argv);
  const std::string url = args["db_url"];
  const std::string mode = args.count("mode") ? args["mode"] : "submit";
  if (url.empty() == args["target"].empty() || (mode != "submit" && !args["target"].empty())) {
    std::cerr << "either --db_url, or --target with --mode=submit\n";
    return 2;
  }
  const int pool_size = args.count("pool") ? std::stoi(args["pool"]) : 16;
  const medkoord::Clock& clock = *medkoord::SystemClock();
  auto signer = *medkoord::PrincipalSigner::Create(std::string(32, 'b'), &clock);
  std::string target = args["target"];
  // The service, unless the clients drive one in another process.
  std::unique_ptr<medkoord::db::Pool> pool;
  std::unique_ptr<medkoord::intake::IntakeStore> store;
  std::unique_ptr<medkoord::intake::IntakeService> service;
  std::unique_ptr<medkoord::Server> server;
  if (target.empty()) {
    pool = std::make_unique<medkoord::db::Pool>(medkoord::db::PoolOptions{
        .url = url, .size = pool_size, .acquire_timeout = absl::Seconds(60), .prepare = medkoord::intake::IntakeStore::Prepare});
    if (auto m = medkoord::db::Migrate(*pool, medkoord::intake::Migrations()); !m.ok()) {
      std::cerr << m.status() << "\n";
      return 1;
    }
    // Experiments with the schema (index, collation, constraint variants)
    // on the real workload: SQL run once after the migrations.
    if (!args["after_migrate_sql"].empty()) {
      std::ifstream in(args["after_migrate_sql"]);
      const std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (auto s = pool->Run([&](pqxx::work& tx) {
            tx.exec(sql);
            return absl::OkStatus();
          });
          !s.ok() || !in) {
        std::cerr << "--after_migrate_sql: " << s << "\n";
        return 1;
      }
    }
    medkoord::intake::GroupCommitOptions batching;
    if (args.count("max_batch")) batching.max_batch = std::stoul(args["max_batch"]);
    if (args.count("writers")) batching.max_writers = std::stoi(args["writers"]);
    if (args.count("min_batch")) batching.min_batch = std::stoul(args["min_batch"]);
    if (args.count("max_wait_us")) batching.max_wait = absl::Microseconds(std::stol(args["max_wait_us"]));
    store = std::make_unique<medkoord::intake::IntakeStore>(*pool, batching);
    service = std::make_unique<medkoord::intake::IntakeService>(*store, signer, clock);
    medkoord::ServerOptions server_options;
    server_options.service_name = "intake-bench";
    // As in the service process (common/service_main.cc): the access log
    // names the verified principal.
    if (args["server_signer"] != "off") server_options.signer = &signer;
    auto started = medkoord::Server::Start(server_options, {service.get()});
    if (!started.ok()) {
      std::cerr << started.status() << "\n";
      return 1;
    }
    server = *std::move(started);
    target = "127.0.0.1:" + std::to_string(server->port());
  }

  if (mode == "serve") {
    std::printf("PORT %d\n", server->port());
    std::fflush(stdout);
    const double cpu0 = CpuSeconds();
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    std::printf("CPU serve seconds=%.2f\n", CpuSeconds() - cpu0);
    PrintBatches(*store);
    server->Shutdown();
    return 0;
  }

  if (mode == "submit") {
    const double cpu0 = CpuSeconds();
    const int clients = args.count("clients") ? std::stoi(args["clients"]) : 32;
    const int seconds = args.count("seconds") ? std::stoi(args["seconds"]) : 30;
    const std::string client_mode = args.count("client") ? args["client"] : "callback";
    const bool client_retries = args["client_retries"] == "on";
    // Connections the clients share (calls are multiplexed on them, as the
    // gateway's calls to intake are on its backend channels).
    const int channel_count = args.count("channels") ? std::stoi(args["channels"]) : 4;
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; i < channel_count; ++i) {
      grpc::ChannelArguments ch_args;
      ch_args.SetInt("bench_channel", i);  // distinct channels, distinct connections
      // A lean submitter: no retry machinery (gRPC 1.51 has it on by
      // default); it retries with its request_id itself. --client_retries=on
      // gives gRPC's default.
      ch_args.SetInt(GRPC_ARG_ENABLE_RETRIES, client_retries ? 1 : 0);
      channels.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ch_args));
    }
    std::atomic<int64_t> errors{0};
    std::vector<std::vector<double>> latencies(clients);
    const auto end = Clock::now() + std::chrono::seconds(seconds);
    auto fill = [](const medkoord::Principal& principal, int c, int64_t n, v1::SubmitApplicationRequest& request) {
      request.set_request_id(absl::StrFormat("bench-%d-%d", c, n));
      v1::Application* a = request.mutable_application();
      a->set_region(principal.region());
      a->mutable_submitted_on()->set_year(2025);
      a->mutable_submitted_on()->set_month(1);
      a->mutable_submitted_on()->set_day(1 + n % 28);
      a->set_drug_name("Trifluridine/tipiracil");
      a->set_atc_code("L01BC59");
      a->set_indication("Metastatic colorectal cancer");
      a->set_icd10("C18.9");
      a->set_cancer(true);
      a->set_marketed_dk(true);
      a->set_medicinraadet_status(v1::MEDICINRAADET_STATUS_NOT_ASSESSED);
      a->set_ema_status(v1::EMA_STATUS_ON_LABEL);
    };
    constexpr char kMethod[] = "/medkoord.intake.v1.Intake/SubmitApplication";
    // Signed principals: by default each client signs once and reuses the
    // signature for half its 60 s lifetime, as the gateway does
    // (services/gateway SignatureCache); --client_signatures=per_call signs
    // every call.
    const bool sign_per_call = args["client_signatures"] == "per_call";
    std::vector<std::pair<medkoord::PrincipalSigner::Signed, Clock::time_point>> signatures(clients);
    auto attach = [&](int c, grpc::ClientContext& ctx) {
      auto& [signed_principal, signed_at] = signatures[c];
      const auto now = Clock::now();
      if (sign_per_call || signed_principal.signature_bin.empty() || now - signed_at > std::chrono::seconds(30)) {
        signed_principal = signer.Sign(RegionPrincipal(c), kMethod, absl::Seconds(60));
        signed_at = now;
      }
      ctx.AddMetadata(medkoord::kPrincipalMetadata, signed_principal.principal_bin);
      ctx.AddMetadata(medkoord::kSignatureMetadata, signed_principal.signature_bin);
    };
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    if (client_mode == "sync") {
      // One blocking stub call at a time per client thread.
      for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
          auto stub = v1::Intake::NewStub(channels[c % channels.size()]);
          const medkoord::Principal principal = RegionPrincipal(c);
          for (int64_t n = 0; Clock::now() < end; ++n) {
            v1::SubmitApplicationRequest request;
            fill(principal, c, n, request);
            grpc::ClientContext ctx;
            attach(c, ctx);
            v1::Application out;
            const auto t0 = Clock::now();
            grpc::Status s = stub->SubmitApplication(&ctx, request, &out);
            const auto t1 = Clock::now();
            if (!s.ok()) {
              ++errors;
              continue;
            }
            latencies[c].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
          }
        });
      }
    } else {
      // Callback stubs: each client keeps one call in flight, the next one
      // issued from the previous one's completion; no thread per client.
      std::vector<std::unique_ptr<v1::Intake::Stub>> stubs;
      for (const auto& ch : channels) stubs.push_back(v1::Intake::NewStub(ch));
      struct Call {
        grpc::ClientContext ctx;
        v1::SubmitApplicationRequest request;
        v1::Application response;
        Clock::time_point t0;
      };
      absl::Mutex mu;
      int running = clients;
      std::function<void(int, int64_t)> issue = [&](int c, int64_t n) {
        if (Clock::now() >= end) {
          absl::MutexLock lock(&mu);
          --running;
          return;
        }
        const medkoord::Principal principal = RegionPrincipal(c);
        auto* call = new Call;
        fill(principal, c, n, call->request);
        attach(c, call->ctx);
        call->t0 = Clock::now();
        stubs[c % stubs.size()]->async()->SubmitApplication(
            &call->ctx, &call->request, &call->response, [&, c, n, call](grpc::Status s) {
              const auto t1 = Clock::now();
              if (s.ok()) {
                latencies[c].push_back(std::chrono::duration<double, std::milli>(t1 - call->t0).count());
              } else {
                ++errors;
              }
              delete call;
              issue(c, n + 1);
            });
      };
      for (int c = 0; c < clients; ++c) issue(c, 0);
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](int* r) { return *r == 0; }, &running));
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(p * all.size()))]; };
    std::printf("RESULT submit client=%s retries=%s signatures=%s clients=%d pool=%d seconds=%.1f ok=%zu errors=%lld throughput=%.0f/s "
                "p50=%.1fms p99=%.1fms max=%.1fms\n",
                client_mode.c_str(), client_retries ? "on" : "off", sign_per_call ? "per_call" : "cached", clients, pool_size, elapsed, all.size(), static_cast<long long>(errors.load()), all.size() / elapsed,
                pct(0.5), pct(0.99), all.empty() ? 0.0 : all.back());
    const double cpu = CpuSeconds() - cpu0;
    std::printf("CPU %s seconds=%.2f per_call_us=%.0f\n", server ? "clients+server" : "clients", cpu,
                all.empty() ? 0.0 : cpu * 1e6 / all.size());
    if (store) PrintBatches(*store);
  } else {
    auto stub = v1::Intake::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    medkoord::Principal secretariat;
    secretariat.set_id("bench-secretariat");
    secretariat.add_roles(medkoord::common::v1::ROLE_FORUM_SECRETARIAT);
    grpc::ClientContext ctx;
    signer.Attach(ctx, secretariat, "/medkoord.intake.v1.Intake/ImportApplications", absl::Hours(2));
    v1::ImportApplicationsResponse response;
    const auto start = Clock::now();
    auto writer = stub->ImportApplications(&ctx, &response);
    constexpr size_t kChunk = 1 << 20;
    std::string source;
    int64_t bytes = 0;
    v1::ImportApplicationsRequest request;
    if (args.count("file")) {
      std::ifstream in(args["file"], std::ios::binary);
      std::string buffer(kChunk, '\0');
      source = args["file"];
      while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0) {
        request.set_chunk(buffer.data(), in.gcount());
        bytes += in.gcount();
        if (!writer->Write(request)) break;
      }
    } else {
      const int64_t rows = std::stoll(args["synthetic_rows"]);
      source = absl::StrFormat("synthetic %d rows", rows);
      SyntheticFile file(rows);
      std::string chunk;
      while (file.Next(chunk, kChunk)) {
        bytes += chunk.size();
        request.set_chunk(chunk);
        if (!writer->Write(request)) break;
      }
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (!s.ok()) {
      std::cerr << "import failed: " << s.error_message() << "\n";
      return 1;
    }
    std::printf("RESULT import source=\"%s\" bytes=%lld rows=%lld stored=%lld rejected=%lld seconds=%.2f "
                "rows_per_s=%.0f peak_rss_mib=%.1f\n",
                source.c_str(), static_cast<long long>(bytes), static_cast<long long>(response.rows_read()),
                static_cast<long long>(response.stored()), static_cast<long long>(response.rejected()), elapsed,
                response.rows_read() / elapsed, PeakRssKiB() / 1024.0);
  }
  if (server) server->Shutdown();
  return 0;
}
