#include "services/gateway/report_page.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medkoord::gateway {
namespace {

using medkoord::assessment::v1::AnnualReport;
using ::testing::HasSubstr;
using ::testing::Not;

void Add(google::protobuf::RepeatedPtrField<medkoord::assessment::v1::NamedCount>* out, const char* name, int count,
         double percent) {
  auto* c = out->Add();
  c->set_name(name);
  c->set_count(count);
  c->set_percent(percent);
}

AnnualReport Report2024() {
  AnnualReport r;
  r.set_year(2024);
  r.mutable_data_source_date()->set_year(2025);
  r.mutable_data_source_date()->set_month(4);
  r.mutable_data_source_date()->set_day(7);
  auto* n = r.mutable_national();
  n->set_total(541);
  for (int y = 2016; y <= 2024; ++y) {
    auto* yc = n->add_per_year();
    yc->set_year(y);
    yc->set_count(200 + 40 * (y - 2016) + (y == 2024 ? 21 : 0));
  }
  Add(n->mutable_outcome(), "recommended", 371, 68.6);
  Add(n->mutable_outcome(), "not_recommended", 143, 26.4);
  Add(n->mutable_outcome(), "not_concluded", 27, 5.0);
  Add(n->mutable_cancer(), "yes", 385, 71.2);
  Add(n->mutable_cancer(), "no", 156, 28.8);
  Add(n->mutable_marketed_dk(), "yes", 436, 80.6);
  Add(n->mutable_medicinraadet_status(), "not_assessed", 306, 56.6);
  Add(n->mutable_ema_status(), "on_label", 348, 64.3);
  Add(n->mutable_ema_status(), "off_label", 183, 33.8);
  Add(n->mutable_top_drugs(), "trifluridine/tipiracil", 49, 9.1);
  Add(n->mutable_top_drugs(), "<script>alert(1)</script>", 1, 0.2);
  for (const char* slug : {"hovedstaden", "syddanmark"}) {
    auto* region = r.add_regions();
    region->set_slug(slug);
    auto* y = region->mutable_section()->add_per_year();
    y->set_year(2024);
    y->set_count(100);
  }
  return r;
}

TEST(ReportPageTest, ShowsEveryFigureWithItsNumbers) {
  const std::string html = RenderAnnualReportHtml(Report2024());
  for (int i = 1; i <= 7; ++i) {
    EXPECT_THAT(html, HasSubstr("id=\"figure-" + std::to_string(i) + "\"")) << i;
    EXPECT_THAT(html, HasSubstr("<svg id=\"chart-" + std::to_string(i) + "\"")) << i;
  }
  EXPECT_THAT(html, HasSubstr("Enkeltansøgninger 2024"));
  EXPECT_THAT(html, HasSubstr("<strong>541</strong>"));
  EXPECT_THAT(html, HasSubstr("371 (69 %)"));
  EXPECT_THAT(html, HasSubstr("385 (71 %)"));
  EXPECT_THAT(html, HasSubstr("Datakilde: FODA, data udtrukket d. 7/4-2025"));
  EXPECT_THAT(html, HasSubstr("trifluridine/tipiracil"));
  EXPECT_THAT(html, HasSubstr("Region Syddanmark"));
}

TEST(ReportPageTest, EscapesText) {
  const std::string html = RenderAnnualReportHtml(Report2024());
  EXPECT_THAT(html, Not(HasSubstr("<script>")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;"));
  EXPECT_EQ(HtmlEscape("a&b\"'<>"), "a&amp;b&quot;&#39;&lt;&gt;");
}

TEST(ReportPageTest, EmptyReportStillRenders) {
  AnnualReport r;
  r.set_year(2030);
  const std::string html = RenderAnnualReportHtml(r);
  EXPECT_THAT(html, HasSubstr("Ingen data."));
  EXPECT_THAT(html, HasSubstr("</html>"));
}

}  // namespace
}  // namespace medkoord::gateway
