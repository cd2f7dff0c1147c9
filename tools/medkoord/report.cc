// `medkoord report annual --year YYYY [--json|--csv]`: the Forum's annual
// report. --json prints the assessment service's report JSON unchanged.
#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "tools/medkoord/cli.h"

namespace medkoord::cli {
namespace {

using namespace medkoord::assessment::v1;

void Breakdown(const char* title, const google::protobuf::RepeatedPtrField<NamedCount>& counts) {
  std::printf("\n%s\n", title);
  for (const auto& c : counts) std::printf("  %-40s %6d  %5.1f %%\n", c.name().c_str(), c.count(), c.percent());
}

void PrintTable(const AnnualReport& r) {
  const ReportSection& n = r.national();
  std::printf("Enkeltansøgninger %d", r.year());
  if (r.has_data_source_date()) {
    std::printf("  (Datakilde: FODA, %d/%d-%d)", r.data_source_date().day(), r.data_source_date().month(),
                r.data_source_date().year());
  }
  std::printf("\nTotal: %d\n", n.total());
  std::printf("\nFigure 1: applications per year\n");
  for (const auto& y : n.per_year()) std::printf("  %d %6d\n", y.year(), y.count());
  std::printf("\nFigure 2: applications per year per region\n  %-12s", "region");
  for (const auto& y : n.per_year()) std::printf(" %5d", y.year());
  std::printf("\n");
  for (const auto& region : r.regions()) {
    std::printf("  %-12s", region.slug().c_str());
    for (const auto& y : n.per_year()) {
      int count = 0;
      for (const auto& ry : region.section().per_year()) {
        if (ry.year() == y.year()) count = ry.count();
      }
      std::printf(" %5d", count);
    }
    std::printf("\n");
  }
  Breakdown("Figure 3: outcome", n.outcome());
  Breakdown("Figure 4: cancer", n.cancer());
  Breakdown("Most frequent indications", n.top_indications());
  Breakdown("Most frequent non-cancer indications", n.top_non_cancer_indications());
  Breakdown("Table 1: top 5 drugs", n.top_drugs());
  Breakdown("Figure 5: marketed in Denmark", n.marketed_dk());
  Breakdown("Figure 6: Medicinrådet status at application", n.medicinraadet_status());
  Breakdown("Figure 7: EMA status at application", n.ema_status());
  Breakdown("Regions", n.region());
}

}  // namespace

int RunReport(Cli& cli) {
  auto& args = cli.args();
  auto& p = args.positional;
  if (p.size() < 2 || p[1] != "annual") return cli.Usage("usage: medkoord report annual --year YYYY [--json|--csv]");
  int year = 0;
  if (!absl::SimpleAtoi(args.Get("year"), &year) || year < 2000 || year > 2100) {
    return cli.Usage("report annual: --year YYYY is required");
  }
  GetAnnualReportRequest req;
  req.set_year(year);
  const bool csv = args.Bool("csv");
  req.set_format(cli.json() ? GetAnnualReportRequest::FORMAT_JSON
                            : csv ? GetAnnualReportRequest::FORMAT_CSV : GetAnnualReportRequest::FORMAT_PROTO);
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  auto stub = Assessment::NewStub(*channel);
  grpc::ClientContext ctx;
  cli.Prepare(ctx, absl::Seconds(60));
  GetAnnualReportResponse resp;
  grpc::Status status = stub->GetAnnualReport(&ctx, req, &resp);
  if (!status.ok()) return cli.Fail(status);
  if (cli.json()) {
    std::cout << resp.json();
    if (resp.json().empty() || resp.json().back() != '\n') std::cout << "\n";
  } else if (csv) {
    std::cout << resp.csv();
  } else {
    PrintTable(resp.report());
  }
  std::cout.flush();
  return kOk;
}

}  // namespace medkoord::cli
