// Benchmark driver for docs/BENCHMARKS.md "Assessment": GetAnnualReport over
// a large number of stored cases, through the real service (store, handler,
// gRPC on loopback, all three renderings), plus the store's aggregation alone.
//
//   report_bench [--db_url=URL] [--rows=1000000] [--years=1] [--iterations=20]
//                [--as_of=2025-04-07] [--skip_load]
//
// Without --db_url it starts a private PostgreSQL cluster (tests/support).
// --years=1 puts every case in the report year (the worst case: the report
// aggregates all rows); --years=10 spreads them over 2015..2024.
// Rows are generated inside PostgreSQL (generate_series), then ANALYZEd.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "common/server.h"
#include "google/protobuf/util/time_util.h"
#include "services/assessment/service_parts.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::assessment {
const std::vector<db::Migration>& Migrations();
}  // namespace medkoord::assessment

namespace {

namespace v1 = ::medkoord::assessment::v1;
using SteadyClock = std::chrono::steady_clock;
using medkoord::assessment::AssessmentStore;

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

double Ms(SteadyClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double min, p50, p95, max;
};
Stats Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))]; };
  return {v.front(), at(0.5), at(0.95), v.back()};
}

// Synthetic cases shaped like the Forum's: five regions, a few hundred drugs
// and indications, 70 % cancer, 5 % still open, decisions ~3 weeks after
// submission.
std::string LoadSql(int64_t rows, int years) {
  const int first_year = 2024 - years + 1;
  return absl::StrFormat(R"sql(
INSERT INTO cases (case_ref, region, application, submitted_on, drug_name, atc_code, indication, icd10,
                   cancer, marketed_dk, medicinraadet_status, ema_status, state, outcome, decided_on,
                   decided_by, decided_at, decision_imported, known_at, registered_by, registered_at,
                   updated_by, updated_at)
SELECT 'S-' || g, 1 + g %% 5, 'regions/x/applications/S-' || g, d,
       'Drug ' || ((g * 7919) %% 400), 'L01XX' || lpad(((g * 7919) %% 100)::text, 2, '0'),
       'Indication ' || ((g * 104729) %% 250), 'C' || lpad((g %% 100)::text, 2, '0') || '.9',
       g %% 10 < 7, g %% 5 < 4, 1 + g %% 4, 1 + (g / 7) %% 3,
       CASE WHEN g %% 20 = 0 THEN 1 ELSE 3 END, CASE WHEN g %% 20 = 0 THEN 0 ELSE 1 + (g / 3) %% 3 END,
       CASE WHEN g %% 20 = 0 THEN NULL ELSE d + 21 END, 'bench', now(), true,
       CASE WHEN g %% 20 = 0 THEN NULL ELSE (d + 21)::timestamptz END, 'bench', now(), 'bench', now()
FROM generate_series(1::bigint, %d) AS g,
     LATERAL (SELECT make_date((%d + g %% %d)::int, 1, 1) + (g / 7 %% 365)::int AS d) AS day
)sql",
                         rows, first_year, years);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace medkoord;
  auto args = Args(argc, argv);
  const int64_t rows = args.count("rows") ? std::stoll(args["rows"]) : 1000000;
  const int years = args.count("years") ? std::stoi(args["years"]) : 1;
  const int iterations = args.count("iterations") ? std::stoi(args["iterations"]) : 20;

  std::unique_ptr<medkoord::testing::PostgresCluster> cluster;
  std::string url = args["db_url"];
  if (url.empty()) {
    auto started = medkoord::testing::PostgresCluster::StartPrivate();
    if (!started.ok()) {
      std::fprintf(stderr, "cluster: %s\n", std::string(started.status().message()).c_str());
      return 1;
    }
    cluster = std::move(*started);
    auto created = cluster->CreateDatabase("report_bench");
    if (!created.ok()) return 1;
    url = *created;
  }

  db::PoolOptions options;
  options.url = url;
  options.size = 4;
  options.prepare = AssessmentStore::Prepare;
  db::Pool pool(options);
  if (auto m = db::Migrate(pool, assessment::Migrations()); !m.ok()) {
    std::fprintf(stderr, "migrate: %s\n", std::string(m.status().message()).c_str());
    return 1;
  }
  auto t0 = SteadyClock::now();
  absl::Status loaded = args.count("skip_load") ? absl::OkStatus() : pool.Run([&](pqxx::work& tx) {
    tx.exec("DELETE FROM cases");
    tx.exec(LoadSql(rows, years));
    return absl::OkStatus();
  });
  if (!loaded.ok()) {
    std::fprintf(stderr, "load: %s\n", std::string(loaded.message()).c_str());
    return 1;
  }
  if (!args.count("skip_load")) {
    auto conn = pool.Connect();
    if (!conn.ok()) return 1;
    pqxx::nontransaction ntx(**conn);
    ntx.exec("VACUUM ANALYZE cases");
  }
  std::printf("loaded %lld cases over %d year(s) in %.1f s\n", static_cast<long long>(rows), years,
              Ms(SteadyClock::now() - t0) / 1000);

  auto signer = PrincipalSigner::Create(std::string(32, 'b'));
  auto parts = assessment::BuildAssessment(pool, *signer, *SystemClock(), "127.0.0.1:1");
  if (!parts.ok()) return 1;
  ServerOptions server_options;
  server_options.service_name = "assessment";
  std::vector<grpc::Service*> services;
  for (auto& s : parts->services) services.push_back(s.get());
  auto server = Server::Start(server_options, services);
  if (!server.ok()) return 1;
  auto stub = v1::Assessment::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                                                          grpc::InsecureChannelCredentials()));
  Principal secretariat;
  secretariat.set_id("bench");
  secretariat.add_roles(common::v1::ROLE_FORUM_SECRETARIAT);

  absl::CivilDay as_of_day(2025, 4, 7);
  if (args.count("as_of") && !absl::ParseCivilTime(args["as_of"], &as_of_day)) {
    std::fprintf(stderr, "--as_of must be YYYY-MM-DD\n");
    return 2;
  }
  const absl::Time as_of = absl::FromCivil(as_of_day, DanishTimeZone());
  AssessmentStore store(pool);
  std::vector<double> rpc_ms, store_ms;
  int64_t total = 0;
  for (int i = 0; i <= iterations; ++i) {  // iteration 0 warms up
    auto s0 = SteadyClock::now();
    auto input = store.LoadReportInput(2024, as_of);
    auto s1 = SteadyClock::now();
    if (!input.ok()) return 1;

    grpc::ClientContext ctx;
    signer->Attach(ctx, secretariat, FullMethodName(v1::Assessment::service_full_name(), "GetAnnualReport"));
    v1::GetAnnualReportRequest req;
    req.set_year(2024);
    *req.mutable_as_of() = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(as_of));
    v1::GetAnnualReportResponse resp;
    auto r0 = SteadyClock::now();
    grpc::Status st = stub->GetAnnualReport(&ctx, req, &resp);
    auto r1 = SteadyClock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "rpc: %s\n", st.error_message().c_str());
      return 1;
    }
    total = resp.report().national().total();
    if (i == 0) continue;
    store_ms.push_back(Ms(s1 - s0));
    rpc_ms.push_back(Ms(r1 - r0));
  }
  const Stats r = Summarise(rpc_ms), s = Summarise(store_ms);
  std::printf("RESULT rows=%lld years=%d as_of=%s report_total=%lld iterations=%d "
              "rpc_ms min=%.1f p50=%.1f p95=%.1f max=%.1f store_ms min=%.1f p50=%.1f p95=%.1f max=%.1f\n",
              static_cast<long long>(rows), years, absl::FormatCivilTime(as_of_day).c_str(),
              static_cast<long long>(total), iterations, r.min, r.p50,
              r.p95, r.max, s.min, s.p50, s.p95, s.max);
  (*server)->Shutdown();
  return 0;
}
