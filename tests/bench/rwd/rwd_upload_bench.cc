// Streams a synthetic cohort of N rows (default 1,000,000) through
// Rwd.UploadCohort into a private PostgreSQL cluster and prints rows/s and
// the process's peak RSS. Server and client run in this process, so the
// peak covers both; the cohort is generated chunk by chunk and never held
// whole, so a bounded upload shows a peak that does not grow with N beyond
// the 16-byte-per-patient duplicate check.
//
//   rwd_upload_bench [rows] [chunk_bytes]

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "common/server.h"
#include "medkoord/rwd/v1/rwd.grpc.pb.h"
#include "services/rwd/migrations.h"
#include "services/rwd/rwd_service.h"
#include "services/rwd/rwd_store.h"
#include "tests/support/postgres_cluster.h"

namespace {

namespace v1 = medkoord::rwd::v1;

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Row i of the synthetic cohort: a unique valid CPR number (alternating
// notations), two arms, dates, and four covariates.
void AppendRow(int64_t i, std::string& out) {
  const int64_t date_index = i % 33600;   // 28 days x 12 months x 100 years
  const int64_t serial = i / 33600;       // < 30 for 10^6 rows
  const int day = static_cast<int>(date_index % 28) + 1;
  const int month = static_cast<int>(date_index / 28 % 12) + 1;
  const int year = static_cast<int>(date_index / 336);
  const char* dash = i % 2 == 0 ? "-" : "";
  const absl::CivilDay index = absl::CivilDay(2019, 1, 1) + i % 1500;
  const int follow = static_cast<int>(30 + (i * 7919) % 900);
  const bool died = i % 3 != 0;
  const bool progressed = i % 4 != 0;
  const absl::CivilDay end = index + follow;
  const absl::CivilDay progression = index + follow / 2;
  absl::StrAppendFormat(&out, "%02d%02d%02d%s%04d,%s,%s,%s,%s,%s,%d,%s,%d,%s\n", day, month, year,
                        dash, static_cast<int>(serial * 10 + (i % 3)),
                        i % 2 == 0 ? "pembrolizumab+chemo" : "chemo",
                        absl::FormatCivilTime(index), died ? absl::FormatCivilTime(end) : "",
                        progressed ? absl::FormatCivilTime(progression) : "",
                        absl::FormatCivilTime(end), static_cast<int>(40 + i % 45),
                        i % 2 == 0 ? "F" : "M", static_cast<int>(i % 3),
                        i % 5 == 0 ? "nordjylland" : "hovedstaden");
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const size_t chunk_bytes = argc > 2 ? std::atoll(argv[2]) : 64 * 1024;

  auto cluster = medkoord::testing::PostgresCluster::StartPrivate();
  if (!cluster.ok()) {
    std::fprintf(stderr, "cluster: %s\n", std::string(cluster.status().message()).c_str());
    return 1;
  }
  auto url = (*cluster)->CreateDatabase("rwdbench");
  if (!url.ok()) return 1;
  medkoord::db::Pool pool({.url = *url, .size = 4, .prepare = medkoord::rwd::RwdStore::Prepare});
  if (!medkoord::db::Migrate(pool, medkoord::rwd::Migrations()).ok()) return 1;
  auto signer = medkoord::PrincipalSigner::Create(std::string(32, 'k'));
  medkoord::rwd::RwdStore store(pool);
  medkoord::rwd::RwdService service(store, *signer, *medkoord::SystemClock(),
                                    *medkoord::rwd::Pseudonymiser::Create(std::string(40, 'p')),
                                    medkoord::rwd::RwdOptions{});
  auto server = medkoord::Server::Start({.service_name = "rwd-bench"}, {&service});
  if (!server.ok()) return 1;
  auto stub = v1::Rwd::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string((*server)->port()), grpc::InsecureChannelCredentials()));

  medkoord::Principal analyst;
  analyst.set_id("bench");
  analyst.add_roles(medkoord::common::v1::ROLE_ANALYST);
  grpc::ClientContext ctx;
  signer->Attach(ctx, analyst,
                 medkoord::FullMethodName(v1::Rwd::service_full_name(), "UploadCohort"),
                 absl::Hours(1));
  const long rss_before = PeakRssKb();
  const auto start = std::chrono::steady_clock::now();
  v1::UploadCohortResponse response;
  auto writer = stub->UploadCohort(&ctx, &response);
  v1::UploadCohortRequest first;
  first.set_protocol("protocols/pilot-1-pembrolizumab-nsclc");
  first.set_display_name("synthetic benchmark cohort");
  writer->Write(first);
  std::string chunk =
      "patient_ref,arm,index_date,death_date,progression_date,last_contact_date,age,sex,ecog,"
      "region\n";
  int64_t bytes = 0;
  for (int64_t i = 0; i < rows; ++i) {
    AppendRow(i, chunk);
    if (chunk.size() >= chunk_bytes || i + 1 == rows) {
      v1::UploadCohortRequest m;
      bytes += static_cast<int64_t>(chunk.size());
      m.set_chunk(std::move(chunk));
      chunk.clear();
      if (!writer->Write(m)) break;
    }
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!status.ok()) {
    std::fprintf(stderr, "upload: %s\n", status.error_message().c_str());
    return 1;
  }
  std::printf(
      "rows=%lld accepted=%lld rejected=%lld bytes=%lld chunk=%zu seconds=%.2f rows_per_s=%.0f "
      "MiB_per_s=%.1f peak_rss_mib=%.1f rss_before_upload_mib=%.1f\n",
      static_cast<long long>(response.rows_read()), static_cast<long long>(response.rows_accepted()),
      static_cast<long long>(response.rows_rejected()), static_cast<long long>(bytes), chunk_bytes,
      seconds, static_cast<double>(response.rows_read()) / seconds, bytes / seconds / (1 << 20),
      PeakRssKb() / 1024.0, rss_before / 1024.0);
  (*server)->Shutdown();
  return response.rows_rejected() == 0 && response.rows_read() == rows ? 0 : 1;
}
