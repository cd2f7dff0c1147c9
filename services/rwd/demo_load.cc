// Loads the local suite's RWD demo data (deploy/local/demo.d/40-rwd-pilots):
// the synthetic pilot cohorts of fixtures/ are uploaded to the RWD service
// under their pilot protocols and analysed (OS and PFS, adjusted for age and
// ECOG, IPTW). Idempotent through request ids, so running it again changes
// nothing. Talks to the service directly with a principal signed by the
// suite's shared key, as the gateway would.
//
//   rwd-demo-load FIXTURES_DIR   (MEDKOORD_RWD_ADDR, MEDKOORD_PRINCIPAL_KEY_FILE)

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/principal.h"
#include "common/server.h"
#include "common/service_main.h"
#include "medkoord/rwd/v1/rwd.grpc.pb.h"

namespace {

namespace v1 = medkoord::rwd::v1;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Method(const char* name) {
  return medkoord::FullMethodName(v1::Rwd::service_full_name(), name);
}

}  // namespace

int main(int argc, char** argv) {
  const char* addr = std::getenv("MEDKOORD_RWD_ADDR");
  const char* key_file = std::getenv("MEDKOORD_PRINCIPAL_KEY_FILE");
  if (argc != 2 || addr == nullptr || key_file == nullptr) {
    std::fprintf(stderr,
                 "usage: MEDKOORD_RWD_ADDR=host:port MEDKOORD_PRINCIPAL_KEY_FILE=f rwd-demo-load "
                 "FIXTURES_DIR\n");
    return 2;
  }
  std::string key = ReadFile(key_file);
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  auto signer = medkoord::PrincipalSigner::Create(key);
  if (!signer.ok()) {
    std::fprintf(stderr, "rwd-demo-load: %s\n", std::string(signer.status().message()).c_str());
    return 2;
  }
  medkoord::Principal loader;
  loader.set_id("demo-loader");
  loader.set_display_name("local demo data");
  loader.add_roles(medkoord::common::v1::ROLE_ANALYST);
  auto stub = v1::Rwd::NewStub(medkoord::InternalChannel(addr));

  struct Pilot {
    const char* file;
    const char* protocol;
    const char* tag;
  };
  for (const Pilot& pilot : {Pilot{"rwd_pilot1_cohort.csv", "protocols/pilot-1-pembrolizumab-nsclc", "pilot-1"},
                             Pilot{"rwd_pilot2_cohort.csv", "protocols/pilot-2-sacituzumab-tnbc", "pilot-2"}}) {
    const std::string csv = ReadFile(std::string(argv[1]) + "/" + pilot.file);
    if (csv.empty()) {
      std::fprintf(stderr, "rwd-demo-load: cannot read %s\n", pilot.file);
      return 1;
    }
    grpc::ClientContext upload_ctx;
    signer->Attach(upload_ctx, loader, Method("UploadCohort"), absl::Minutes(5));
    v1::UploadCohortResponse uploaded;
    auto writer = stub->UploadCohort(&upload_ctx, &uploaded);
    v1::UploadCohortRequest first;
    first.set_request_id(std::string("demo-") + pilot.tag + "-cohort");
    first.set_protocol(pilot.protocol);
    first.set_display_name(std::string("Synthetic ") + pilot.tag + " cohort (fixtures)");
    first.mutable_data_cut_date()->set_year(2026);
    first.mutable_data_cut_date()->set_month(6);
    first.mutable_data_cut_date()->set_day(30);
    first.set_chunk(csv);
    writer->Write(first);
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) {
      std::fprintf(stderr, "rwd-demo-load: upload %s: %s\n", pilot.file, status.error_message().c_str());
      return 1;
    }
    std::printf("%s: %lld patients -> %s\n", pilot.file,
                static_cast<long long>(uploaded.rows_accepted()), uploaded.cohort().name().c_str());
    for (v1::Endpoint endpoint : {v1::ENDPOINT_OS, v1::ENDPOINT_PFS}) {
      v1::RunAnalysisRequest run;
      run.set_request_id(std::string("demo-") + pilot.tag + "-" + v1::Endpoint_Name(endpoint));
      run.set_protocol(pilot.protocol);
      run.set_cohort(uploaded.cohort().name());
      run.mutable_spec()->set_endpoint(endpoint);
      for (const char* c : {"arm", "age", "ecog"}) run.mutable_spec()->add_covariates(c);
      for (const char* c : {"age", "ecog"}) run.mutable_spec()->add_ps_covariates(c);
      for (double days : {182.0, 365.0, 730.0}) run.mutable_spec()->add_at_times(days);
      grpc::ClientContext ctx;
      signer->Attach(ctx, loader, Method("RunAnalysis"), absl::Minutes(5));
      v1::Analysis analysis;
      status = stub->RunAnalysis(&ctx, run, &analysis);
      if (!status.ok()) {
        std::fprintf(stderr, "rwd-demo-load: analysis: %s\n", status.error_message().c_str());
        return 1;
      }
      std::printf("  %s -> %s\n", v1::Endpoint_Name(endpoint).c_str(), analysis.name().c_str());
    }
  }
  return 0;
}
