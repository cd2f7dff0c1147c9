// `medkoord applications ...`: the jobs of a region's IT staff and the
// Forum secretariat on individual applications.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/principal.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "tools/medkoord/cli.h"

namespace medkoord::cli {
namespace {

using namespace medkoord::intake::v1;

std::string DateText(const google::type::Date& d) {
  if (d.year() == 0) return "";
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

std::string EnumTail(const std::string& full, const std::string& prefix) {
  if (full.rfind(prefix, 0) == 0) {
    std::string s = full.substr(prefix.size());
    for (char& c : s) c = static_cast<char>(std::tolower(c));
    return s;
  }
  return full;
}

std::string RandomRequestId() {
  std::random_device rd;
  std::string bytes(12, '\0');
  for (char& c : bytes) c = static_cast<char>(rd());
  return absl::StrCat("cli-", absl::BytesToHexString(bytes));
}

void PrintApplication(const Application& a) {
  std::printf("%s\n", a.name().c_str());
  std::printf("  region:        %s\n", std::string(RegionSlug(a.region())).c_str());
  std::printf("  submitted on:  %s\n", DateText(a.submitted_on()).c_str());
  std::printf("  drug:          %s (%s)\n", a.drug_name().c_str(), a.atc_code().c_str());
  std::printf("  indication:    %s%s\n", a.indication().c_str(),
              a.icd10().empty() ? "" : absl::StrCat(" [", a.icd10(), "]").c_str());
  std::printf("  state:         %s\n", EnumTail(ApplicationState_Name(a.state()), "APPLICATION_STATE_").c_str());
  if (a.outcome() != OUTCOME_UNSPECIFIED) {
    std::printf("  outcome:       %s on %s\n", EnumTail(Outcome_Name(a.outcome()), "OUTCOME_").c_str(),
                DateText(a.decided_on()).c_str());
  }
}

// The outcome of a call returning one application, for people or scripts.
int Show(const Cli& cli, const grpc::Status& status, const Application& out) {
  if (!status.ok()) return cli.Fail(status);
  if (cli.json()) {
    std::cout << Cli::ToJson(out, false) << std::endl;
  } else {
    PrintApplication(out);
  }
  return kOk;
}

std::string ParentOf(const Args& args) {
  std::string parent = args.Get("parent");
  if (parent.empty() && args.Has("region")) parent = absl::StrCat("regions/", args.Get("region"));
  return parent.empty() ? "regions/-" : parent;
}

int Submit(Cli& cli) {
  SubmitApplicationRequest req;
  auto& args = cli.args();
  req.set_request_id(args.Get("request-id", RandomRequestId()));
  absl::Status s = SetFieldsFromFlags(args, req.mutable_application(), "",
                                      {"json", "timeout", "request-id", "addr", "api-key", "ca-file"});
  if (!s.ok()) return cli.Usage(std::string(s.message()));
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  auto stub = Intake::NewStub(*channel);
  grpc::ClientContext ctx;
  cli.Prepare(ctx);
  Application out;
  grpc::Status status = stub->SubmitApplication(&ctx, req, &out);
  return Show(cli, status, out);
}

int List(Cli& cli) {
  auto& args = cli.args();
  ListApplicationsRequest req;
  req.set_parent(ParentOf(args));
  absl::Status s = SetFieldsFromFlags(args, &req, "",
                                      {"json", "timeout", "parent", "region", "all", "addr", "api-key", "ca-file"});
  if (!s.ok()) return cli.Usage(std::string(s.message()));
  const bool all = args.Bool("all");
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  auto stub = Intake::NewStub(*channel);
  if (!cli.json()) {
    std::printf("%-44s %-11s %-26s %-8s %-10s %s\n", "NAME", "SUBMITTED", "DRUG", "ATC", "STATE", "OUTCOME");
  }
  while (true) {
    grpc::ClientContext ctx;
    cli.Prepare(ctx);
    ListApplicationsResponse resp;
    grpc::Status status = stub->ListApplications(&ctx, req, &resp);
    if (!status.ok()) return cli.Fail(status);
    for (const auto& a : resp.applications()) {
      if (cli.json()) {
        std::cout << Cli::ToJson(a, false) << "\n";
      } else {
        std::printf("%-44s %-11s %-26.26s %-8s %-10s %s\n", a.name().c_str(), DateText(a.submitted_on()).c_str(),
                    a.drug_name().c_str(), a.atc_code().c_str(),
                    EnumTail(ApplicationState_Name(a.state()), "APPLICATION_STATE_").c_str(),
                    a.outcome() == OUTCOME_UNSPECIFIED ? "" : EnumTail(Outcome_Name(a.outcome()), "OUTCOME_").c_str());
      }
    }
    if (!all || resp.next_page_token().empty()) {
      if (!all && !resp.next_page_token().empty() && !cli.json()) {
        std::printf("(more: --page_token=%s, or --all)\n", resp.next_page_token().c_str());
      }
      break;
    }
    req.set_page_token(resp.next_page_token());
  }
  std::cout.flush();
  return kOk;
}

int GetOrWithdraw(Cli& cli, bool withdraw) {
  auto& args = cli.args();
  if (args.positional.size() < 3) return cli.Usage("which application? give its name (regions/<region>/applications/<case_ref>)");
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  auto stub = Intake::NewStub(*channel);
  grpc::ClientContext ctx;
  cli.Prepare(ctx);
  Application out;
  grpc::Status status;
  if (withdraw) {
    WithdrawApplicationRequest req;
    req.set_name(args.positional[2]);
    req.set_reason(args.Get("reason"));
    status = stub->WithdrawApplication(&ctx, req, &out);
  } else {
    GetApplicationRequest req;
    req.set_name(args.positional[2]);
    status = stub->GetApplication(&ctx, req, &out);
  }
  return Show(cli, status, out);
}

void Progress(int64_t sent, int64_t total, bool enabled) {
  if (!enabled || total <= 0) return;
  const int width = 40;
  const int filled = static_cast<int>(width * sent / total);
  std::fprintf(stderr, "\r[%s%s] %3d%% %lld/%lld bytes", std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), static_cast<int>(100 * sent / total),
               static_cast<long long>(sent), static_cast<long long>(total));
  if (sent == total) std::fprintf(stderr, "\n");
}

int Import(Cli& cli) {
  auto& args = cli.args();
  if (args.positional.size() < 3) return cli.Usage("usage: medkoord applications import FILE.csv [--validate-only]");
  const std::string path = args.positional[2];
  std::ifstream in(path, std::ios::binary);
  if (!in) return cli.Usage(absl::StrCat("cannot read ", path));
  in.seekg(0, std::ios::end);
  const int64_t total = in.tellg();
  in.seekg(0);
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  auto stub = Intake::NewStub(*channel);
  grpc::ClientContext ctx;
  cli.Prepare(ctx, absl::Minutes(30));
  ImportApplicationsResponse resp;
  auto writer = stub->ImportApplications(&ctx, &resp);
  const bool validate_only = args.Bool("validate-only");
  const bool progress = !args.Bool("no-progress") && !cli.json() && isatty(2);
  constexpr size_t kChunk = 64 * 1024;
  std::string buffer(kChunk, '\0');
  int64_t sent = 0;
  bool first = true;
  Progress(0, total, progress);
  while (in) {
    in.read(buffer.data(), kChunk);
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    ImportApplicationsRequest req;
    req.set_chunk(buffer.data(), static_cast<size_t>(n));
    if (first) req.set_validate_only(validate_only);
    first = false;
    if (!writer->Write(req)) break;  // the server ended the call; Finish says why
    sent += n;
    Progress(sent, total, progress);
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (progress && sent != total) std::fprintf(stderr, "\n");
  if (!status.ok()) return cli.Fail(status);
  if (cli.json()) {
    std::cout << Cli::ToJson(resp, false) << std::endl;
  } else {
    std::printf("%s%lld rows read: %lld stored, %lld unchanged, %lld rejected\n",
                resp.validate_only() ? "(validate only) " : "", static_cast<long long>(resp.rows_read()),
                static_cast<long long>(resp.stored()), static_cast<long long>(resp.unchanged()),
                static_cast<long long>(resp.rejected()));
    for (const auto& e : resp.errors()) {
      std::printf("  line %lld%s%s: %s\n", static_cast<long long>(e.line()), e.column().empty() ? "" : ", column ",
                  e.column().c_str(), e.reason().c_str());
    }
    if (resp.errors_truncated()) std::printf("  (more errors not shown)\n");
  }
  return resp.rejected() > 0 ? kPartial : kOk;
}

int Export(Cli& cli) {
  auto& args = cli.args();
  ExportApplicationsRequest req;
  req.set_parent(ParentOf(args));
  if (args.Has("year")) {
    absl::Status s = SetField(&req, "year", args.Get("year"));
    if (!s.ok()) return cli.Usage(std::string(s.message()));
  }
  req.set_include_region_ref(args.Bool("include-region-ref"));
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  auto stub = Intake::NewStub(*channel);
  grpc::ClientContext ctx;
  cli.Prepare(ctx, absl::Minutes(30));
  auto reader = stub->ExportApplications(&ctx, req);
  ExportApplicationsResponse chunk;
  while (reader->Read(&chunk)) std::cout.write(chunk.chunk().data(), static_cast<std::streamsize>(chunk.chunk().size()));
  std::cout.flush();
  grpc::Status status = reader->Finish();
  if (!status.ok()) return cli.Fail(status);
  return kOk;
}

}  // namespace

int RunApplications(Cli& cli) {
  auto& p = cli.args().positional;
  const std::string verb = p.size() > 1 ? p[1] : "";
  if (verb == "submit") return Submit(cli);
  if (verb == "list") return List(cli);
  if (verb == "get") return GetOrWithdraw(cli, false);
  if (verb == "withdraw") return GetOrWithdraw(cli, true);
  if (verb == "import") return Import(cli);
  if (verb == "export") return Export(cli);
  return cli.Usage("applications: submit | list | get NAME | withdraw NAME | import FILE.csv | export");
}

}  // namespace medkoord::cli
