// The intake service's gRPC API against a real PostgreSQL: validation,
// idempotency, region scoping, the withdrawal lifecycle, decisions coming
// back from assessment, and the outbox towards assessment.

#include <algorithm>
#include <set>

#include <gmock/gmock.h>

#include "tests/integration/intake/intake_test_env.h"

namespace medkoord::intake::testing {
namespace {

using ::testing::Contains;
using ::testing::IsSupersetOf;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> fields;
  for (const auto& [field, reason] : FieldViolationsOf(FromGrpcStatus(status))) fields.push_back(field);
  return fields;
}

TEST_F(IntakeTest, SubmitStoresTheApplicationAndOneOutboxEvent) {
  v1::Application created;
  v1::Application in = ValidApplication();
  in.set_region_ref("SYD-2025-77");
  grpc::Status s = Submit(Region(common::v1::REGION_SYDDANMARK), in, "req-1", &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(created.name(), "regions/syddanmark/applications/" + created.case_ref());
  EXPECT_EQ(created.case_ref().rfind("A-2025-", 0), 0u) << created.case_ref();
  EXPECT_EQ(created.state(), v1::APPLICATION_STATE_OPEN);
  EXPECT_EQ(created.source(), v1::APPLICATION_SOURCE_SUBMITTED);
  EXPECT_EQ(created.created().principal_id(), "region-it:syddanmark");
  EXPECT_EQ(created.region_ref(), "SYD-2025-77");

  auto delivered = relay_->DeliverPending();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 1);
  auto events = assessment_->events();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_TRUE(events[0].has_application_submitted());
  const av1::ApplicationSnapshot& snap = events[0].application_submitted();
  EXPECT_EQ(snap.application(), created.name());
  EXPECT_EQ(snap.atc_code(), "L01BC59");
  EXPECT_EQ(snap.region(), common::v1::REGION_SYDDANMARK);
  EXPECT_TRUE(snap.cancer());
  EXPECT_EQ(snap.medicinraadet_status(), av1::MEDICINRAADET_STATUS_NOT_ASSESSED);
  EXPECT_EQ(events[0].actor(), "region-it:syddanmark");
  EXPECT_FALSE(events[0].event_id().empty());
}

TEST_F(IntakeTest, ValidationNamesEveryBadFieldAndStoresNothing) {
  v1::Application bad;
  bad.set_atc_code("L01E");
  bad.set_icd10("XYZ");
  bad.mutable_submitted_on()->set_year(2025);
  bad.mutable_submitted_on()->set_month(4);
  bad.mutable_submitted_on()->set_day(8);  // tomorrow in Copenhagen
  bad.set_drug_name(std::string(201, 'x'));
  v1::Application out;
  grpc::Status s = Submit(Secretariat(), bad, "", &out);
  ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(s),
              UnorderedElementsAre("request_id", "application.region", "application.submitted_on",
                                   "application.drug_name", "application.atc_code", "application.indication",
                                   "application.icd10", "application.cancer", "application.marketed_dk",
                                   "application.medicinraadet_status", "application.ema_status"));
  EXPECT_THAT(FieldViolationsOf(FromGrpcStatus(s)),
              Contains(Pair("application.atc_code", "`L01E` is an ATC group, not a 7-character substance code")));
  EXPECT_TRUE(ListAll(Secretariat(), {}, 100).empty());
  EXPECT_EQ(*relay_->DeliverPending(), 0);
}

TEST_F(IntakeTest, TodayIsDanish) {
  // 23:30 UTC on 7 April is already 8 April in Copenhagen.
  clock_.Set(absl::FromCivil(absl::CivilSecond(2025, 4, 7, 23, 30, 0), absl::UTCTimeZone()));
  v1::Application a = ValidApplication();
  a.mutable_submitted_on()->set_month(4);
  a.mutable_submitted_on()->set_day(8);
  v1::Application out;
  EXPECT_TRUE(Submit(Secretariat(), a, "r", &out).ok());
}

TEST_F(IntakeTest, RetryWithTheSameRequestIdCreatesNothing) {
  const Principal region = Region(common::v1::REGION_SYDDANMARK);
  v1::Application first, second;
  ASSERT_TRUE(Submit(region, ValidApplication(), "retry-1", &first).ok());
  ASSERT_TRUE(Submit(region, ValidApplication(), "retry-1", &second).ok());
  EXPECT_EQ(first.name(), second.name());
  EXPECT_EQ(ListAll(region, {}, 10).size(), 1u);
  EXPECT_EQ(*relay_->DeliverPending(), 1);
  // The same request id from another caller is another request.
  v1::Application third;
  ASSERT_TRUE(Submit(Region(common::v1::REGION_HOVEDSTADEN), ValidApplication(common::v1::REGION_HOVEDSTADEN),
                     "retry-1", &third)
                  .ok());
  EXPECT_NE(third.name(), first.name());
}

TEST_F(IntakeTest, RegionRefIsUniquePerRegion) {
  v1::Application a = ValidApplication();
  a.set_region_ref("REF-1");
  v1::Application out;
  ASSERT_TRUE(Submit(Secretariat(), a, "a", &out).ok());
  grpc::Status s = Submit(Secretariat(), a, "b", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS) << s.error_message();
  a.set_region(common::v1::REGION_NORDJYLLAND);
  EXPECT_TRUE(Submit(Secretariat(), a, "c", &out).ok());
  EXPECT_EQ(ListAll(Secretariat(), {}, 10).size(), 2u);
}

TEST_F(IntakeTest, ARegionSeesAndChangesOnlyItsOwnApplications) {
  const Principal syd = Region(common::v1::REGION_SYDDANMARK);
  const Principal hov = Region(common::v1::REGION_HOVEDSTADEN);
  v1::Application mine;
  ASSERT_TRUE(Submit(syd, ValidApplication(), "s1", &mine).ok());

  // Submitting for another region is a validation error on the region field.
  v1::Application out;
  grpc::Status s = Submit(hov, ValidApplication(common::v1::REGION_SYDDANMARK), "h1", &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(s), UnorderedElementsAre("application.region"));

  // Reading another region's application: NOT_FOUND, by its real name or a forged one.
  v1::GetApplicationRequest get;
  get.set_name(mine.name());
  EXPECT_EQ(stub_->GetApplication(Ctx(hov, "GetApplication").get(), get, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get.set_name("regions/hovedstaden/applications/" + mine.case_ref());
  EXPECT_EQ(stub_->GetApplication(Ctx(hov, "GetApplication").get(), get, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(ListAll(hov, {}, 10).empty());
  v1::ListApplicationsRequest other;
  other.set_parent("regions/syddanmark");
  v1::ListApplicationsResponse listed;
  EXPECT_EQ(stub_->ListApplications(Ctx(hov, "ListApplications").get(), other, &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // Withdrawing it: NOT_FOUND, and nothing changes.
  v1::WithdrawApplicationRequest withdraw;
  withdraw.set_name(mine.name());
  EXPECT_EQ(stub_->WithdrawApplication(Ctx(hov, "WithdrawApplication").get(), withdraw, &out).error_code(),
            grpc::StatusCode::NOT_FOUND);
  get.set_name(mine.name());
  ASSERT_TRUE(stub_->GetApplication(Ctx(syd, "GetApplication").get(), get, &out).ok());
  EXPECT_EQ(out.state(), v1::APPLICATION_STATE_OPEN);
  EXPECT_EQ(ListAll(syd, {}, 10).size(), 1u);

  // The Forum reads everything; a member may not submit or withdraw.
  EXPECT_EQ(ListAll(Member(), {}, 10).size(), 1u);
  EXPECT_TRUE(stub_->GetApplication(Ctx(Member(), "GetApplication").get(), get, &out).ok());
  EXPECT_EQ(Submit(Member(), ValidApplication(), "m1", &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(stub_->WithdrawApplication(Ctx(Member(), "WithdrawApplication").get(), withdraw, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(IntakeTest, CallsWithoutAValidSignatureAreUnauthenticated) {
  v1::GetApplicationRequest get;
  get.set_name("regions/syddanmark/applications/A-1");
  v1::Application out;
  grpc::ClientContext bare;
  EXPECT_EQ(stub_->GetApplication(&bare, get, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // Signed for another method.
  EXPECT_EQ(stub_->GetApplication(Ctx(Secretariat(), "ListApplications").get(), get, &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Signed with another key.
  auto other = PrincipalSigner::Create(std::string(32, 'x'), &clock_);
  grpc::ClientContext forged;
  other->Attach(forged, Secretariat(), FullMethodName(v1::Intake::service_full_name(), "GetApplication"));
  EXPECT_EQ(stub_->GetApplication(&forged, get, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(IntakeTest, WithdrawLifecycle) {
  const Principal syd = Region(common::v1::REGION_SYDDANMARK);
  v1::Application open, decided, out;
  ASSERT_TRUE(Submit(syd, ValidApplication(), "w1", &open).ok());
  ASSERT_TRUE(Submit(syd, ValidApplication(), "w2", &decided).ok());

  v1::WithdrawApplicationRequest withdraw;
  withdraw.set_name(open.name());
  withdraw.set_reason("the patient's situation changed");
  ASSERT_TRUE(stub_->WithdrawApplication(Ctx(syd, "WithdrawApplication").get(), withdraw, &out).ok());
  EXPECT_EQ(out.state(), v1::APPLICATION_STATE_WITHDRAWN);
  EXPECT_EQ(out.withdrawn().principal_id(), "region-it:syddanmark");
  EXPECT_EQ(out.withdraw_reason(), "the patient's situation changed");
  // Again: the same answer, no second event.
  ASSERT_TRUE(stub_->WithdrawApplication(Ctx(syd, "WithdrawApplication").get(), withdraw, &out).ok());
  EXPECT_EQ(out.state(), v1::APPLICATION_STATE_WITHDRAWN);

  v1::ApplyDecisionRequest decision;
  decision.set_event_id("decision-1");
  decision.set_application(decided.name());
  decision.set_outcome(v1::OUTCOME_RECOMMENDED);
  decision.mutable_decided_on()->set_year(2025);
  decision.mutable_decided_on()->set_month(4);
  decision.mutable_decided_on()->set_day(1);
  decision.set_decided_by("region-it:syddanmark");
  v1::ApplyDecisionResponse applied;
  ASSERT_TRUE(internal_stub_
                  ->ApplyDecision(Ctx(Service(), "ApplyDecision", v1::IntakeInternal::service_full_name()).get(),
                                  decision, &applied)
                  .ok());
  withdraw.set_name(decided.name());
  grpc::Status s = stub_->WithdrawApplication(Ctx(syd, "WithdrawApplication").get(), withdraw, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();

  ASSERT_EQ(*relay_->DeliverPending(), 3);  // two submissions, one withdrawal
  auto events = assessment_->events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[2].has_application_withdrawn());
  EXPECT_EQ(events[2].application_withdrawn().application(), open.name());
  EXPECT_EQ(events[2].application_withdrawn().withdrawn_on().day(), 7);

  // The export shows the withdrawal as not concluded, the decision as decided,
  // and reads back as the same cases.
  grpc::Status es;
  const std::string csv = Export({}, &es);
  ASSERT_TRUE(es.ok()) << es.error_message();
  EXPECT_NE(csv.find(open.case_ref() + ",syddanmark,2025-03-14,Trifluridine/tipiracil,L01BC59,"
                                       "Metastatic colorectal cancer,C18.9,yes,yes,not_assessed,on_label,"
                                       "not_concluded,\r\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find(decided.case_ref() + ",syddanmark,2025-03-14,Trifluridine/tipiracil,L01BC59,"
                                          "Metastatic colorectal cancer,C18.9,yes,yes,not_assessed,on_label,"
                                          "recommended,2025-04-01\r\n"),
            std::string::npos)
      << csv;
  v1::ImportApplicationsResponse reimported;
  ASSERT_TRUE(Import(csv, false, 64, &reimported).ok());
  EXPECT_EQ(reimported.unchanged(), 2);
  EXPECT_EQ(reimported.rejected(), 0) << reimported.DebugString();
}

TEST_F(IntakeTest, DecisionsAreIdempotentAndTheRegionSeesThem) {
  const Principal syd = Region(common::v1::REGION_SYDDANMARK);
  v1::Application app, out;
  ASSERT_TRUE(Submit(syd, ValidApplication(), "d1", &app).ok());
  v1::ApplyDecisionRequest decision;
  decision.set_event_id("evt-42");
  decision.set_application(app.name());
  decision.set_outcome(v1::OUTCOME_NOT_RECOMMENDED);
  decision.mutable_decided_on()->set_year(2025);
  decision.mutable_decided_on()->set_month(4);
  decision.mutable_decided_on()->set_day(2);
  decision.set_decided_by("forum-secretariat");
  decision.set_reason("no documented effect");
  auto apply = [&](v1::ApplyDecisionResponse* r, const Principal& p = Service()) {
    return internal_stub_->ApplyDecision(Ctx(p, "ApplyDecision", v1::IntakeInternal::service_full_name()).get(),
                                         decision, r);
  };
  v1::ApplyDecisionResponse first, again;
  ASSERT_TRUE(apply(&first).ok());
  EXPECT_FALSE(first.duplicate());
  EXPECT_EQ(first.application().state(), v1::APPLICATION_STATE_DECIDED);
  const auto decided_time = first.application().decided().time();
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(apply(&again).ok());
  EXPECT_TRUE(again.duplicate());
  EXPECT_EQ(again.application().decided().time().seconds(), decided_time.seconds());

  v1::GetApplicationRequest get;
  get.set_name(app.name());
  ASSERT_TRUE(stub_->GetApplication(Ctx(syd, "GetApplication").get(), get, &out).ok());
  EXPECT_EQ(out.outcome(), v1::OUTCOME_NOT_RECOMMENDED);
  EXPECT_EQ(out.state(), v1::APPLICATION_STATE_DECIDED);
  EXPECT_EQ(out.decided_on().day(), 2);
  EXPECT_EQ(out.decided().principal_id(), "forum-secretariat");
  EXPECT_EQ(out.decision_reason(), "no documented effect");

  // Only services may call it; a decision must be complete.
  v1::ApplyDecisionResponse r;
  EXPECT_EQ(apply(&r, Secretariat()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  decision.set_event_id("evt-43");
  decision.clear_decided_on();
  decision.set_application("regions/syddanmark/applications/NO-SUCH");
  grpc::Status s = apply(&r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(s), UnorderedElementsAre("decided_on"));
  decision.set_outcome(v1::OUTCOME_NOT_CONCLUDED);
  EXPECT_EQ(apply(&r).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(IntakeTest, OutboxDeliversEverythingOnceAfterAnOutage) {
  const Principal syd = Region(common::v1::REGION_SYDDANMARK);
  assessment_->SetDown(true);
  std::vector<std::string> names;
  for (int i = 0; i < 5; ++i) {
    v1::Application out;
    // Intake keeps accepting while assessment is down.
    ASSERT_TRUE(Submit(syd, ValidApplication(), "o" + std::to_string(i), &out).ok());
    names.push_back(out.name());
  }
  v1::WithdrawApplicationRequest withdraw;
  withdraw.set_name(names[1]);
  v1::Application out;
  ASSERT_TRUE(stub_->WithdrawApplication(Ctx(syd, "WithdrawApplication").get(), withdraw, &out).ok());
  EXPECT_FALSE(relay_->DeliverPending().ok());
  EXPECT_TRUE(assessment_->events().empty());
  EXPECT_EQ(relay_->pending(), 6);

  // Assessment is back, and has meanwhile decided the case that intake withdrew:
  // it refuses the withdrawal, which is a final answer, not a reason to retry.
  assessment_->MarkDecided(names[1]);
  assessment_->SetDown(false);
  auto delivered = relay_->DeliverPending();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 6);
  EXPECT_EQ(relay_->pending(), 0);
  auto events = assessment_->events();
  ASSERT_EQ(events.size(), 5u);
  std::vector<std::string> got;
  std::set<std::string> ids;
  for (const auto& e : events) {
    got.push_back(e.application_submitted().application());
    ids.insert(e.event_id());
  }
  EXPECT_EQ(got, names);  // in order, each once
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(assessment_->refused(), 1);
  EXPECT_EQ(*relay_->DeliverPending(), 0);
}

TEST_F(IntakeTest, ListFiltersAndPages) {
  v1::ImportApplicationsResponse imported;
  ASSERT_TRUE(Import(ReadFixture("forum_cases_2024.csv"), false, 8192, &imported).ok());
  ASSERT_EQ(imported.stored(), 541);

  std::vector<v1::Application> all = ListAll(Member(), {}, 37);
  ASSERT_EQ(all.size(), 541u);
  std::set<std::string> names;
  for (const auto& a : all) names.insert(a.name());
  EXPECT_EQ(names.size(), 541u);
  for (size_t i = 1; i < all.size(); ++i) {
    const auto& p = all[i - 1].submitted_on();
    const auto& c = all[i].submitted_on();
    EXPECT_GE(std::make_tuple(p.year(), p.month(), p.day(), all[i - 1].case_ref()),
              std::make_tuple(c.year(), c.month(), c.day(), all[i].case_ref()));
  }

  v1::ListApplicationsRequest by_drug;
  by_drug.set_year(2024);
  by_drug.set_atc_code("L01BC59");
  EXPECT_EQ(ListAll(Member(), by_drug, 10).size(), 49u);  // trifluridine/tipiracil (DOMAIN.md table 1)
  v1::ListApplicationsRequest by_indication;
  by_indication.set_indication("metastatic colorectal cancer");
  EXPECT_EQ(ListAll(Member(), by_indication, 1000).size(), 68u);
  v1::ListApplicationsRequest by_outcome;
  by_outcome.set_outcome(v1::OUTCOME_RECOMMENDED);
  EXPECT_EQ(ListAll(Member(), by_outcome, 1000).size(), 371u);
  v1::ListApplicationsRequest group;
  group.set_atc_code("L01");
  group.set_icd10("C18");
  group.set_parent("regions/hovedstaden");
  for (const auto& a : ListAll(Member(), group, 1000)) {
    EXPECT_EQ(a.atc_code().substr(0, 3), "L01");
    EXPECT_EQ(a.icd10().substr(0, 3), "C18");
    EXPECT_EQ(a.region(), common::v1::REGION_HOVEDSTADEN);
  }
  // A regional caller gets its own region only.
  for (const auto& a : ListAll(Region(common::v1::REGION_NORDJYLLAND), {}, 1000)) {
    EXPECT_EQ(a.region(), common::v1::REGION_NORDJYLLAND);
  }
  // A token is bound to its filters.
  v1::ListApplicationsRequest first_page;
  first_page.set_page_size(5);
  v1::ListApplicationsResponse page;
  ASSERT_TRUE(stub_->ListApplications(Ctx(Member(), "ListApplications").get(), first_page, &page).ok());
  by_drug.set_page_token(page.next_page_token());
  EXPECT_EQ(stub_->ListApplications(Ctx(Member(), "ListApplications").get(), by_drug, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListApplicationsRequest bad;
  bad.set_atc_code("X9");
  bad.set_icd10("9");
  grpc::Status s = stub_->ListApplications(Ctx(Member(), "ListApplications").get(), bad, &page);
  EXPECT_THAT(ViolatedFields(s), UnorderedElementsAre("atc_code", "icd10"));
}

TEST_F(IntakeTest, Protocols) {
  v1::CreateProtocolRequest create;
  create.set_request_id("p1");
  v1::Protocol* p = create.mutable_protocol();
  p->set_title("Ibrutinib in mantle cell lymphoma");
  p->set_region(common::v1::REGION_SYDDANMARK);
  p->set_department("Haematology, OUH");
  p->set_drug_name("Ibrutinib");
  p->set_atc_code("L01EL01");
  p->set_indication("Mantle cell lymphoma");
  p->set_icd10("C83.1");
  p->mutable_presented_on()->set_year(2024);
  p->mutable_presented_on()->set_month(5);
  p->mutable_presented_on()->set_day(15);
  v1::Protocol created, again;
  ASSERT_TRUE(stub_->CreateProtocol(Ctx(Secretariat(), "CreateProtocol").get(), create, &created).ok());
  ASSERT_TRUE(stub_->CreateProtocol(Ctx(Secretariat(), "CreateProtocol").get(), create, &again).ok());
  EXPECT_EQ(created.name(), again.name());
  EXPECT_EQ(created.state(), v1::PROTOCOL_STATE_PRESENTED);

  v1::AddProtocolNoteRequest note;
  note.set_name(created.name());
  note.set_request_id("n1");
  note.mutable_note()->set_text("Follow-up letter sent to the department");
  note.mutable_note()->set_state(v1::PROTOCOL_STATE_UNDER_FOLLOW_UP);
  v1::Protocol noted;
  ASSERT_TRUE(stub_->AddProtocolNote(Ctx(Secretariat(), "AddProtocolNote").get(), note, &noted).ok());
  ASSERT_TRUE(stub_->AddProtocolNote(Ctx(Secretariat(), "AddProtocolNote").get(), note, &noted).ok());
  EXPECT_EQ(noted.state(), v1::PROTOCOL_STATE_UNDER_FOLLOW_UP);
  ASSERT_EQ(noted.notes_size(), 1);
  EXPECT_EQ(noted.notes(0).noted_on().day(), 7);

  v1::ListProtocolsRequest list;
  list.set_year(2024);
  v1::ListProtocolsResponse listed;
  ASSERT_TRUE(stub_->ListProtocols(Ctx(Secretariat(), "ListProtocols").get(), list, &listed).ok());
  ASSERT_EQ(listed.protocols_size(), 1);
  EXPECT_EQ(listed.protocols(0).notes_size(), 1);
  // Protocols are not applications, and only the secretariat handles them.
  EXPECT_TRUE(ListAll(Secretariat(), {}, 10).empty());
  EXPECT_EQ(stub_->ListProtocols(Ctx(Member(), "ListProtocols").get(), list, &listed).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  create.set_request_id("p2");
  create.mutable_protocol()->clear_title();
  create.mutable_protocol()->set_atc_code("L01E");  // a group is fine for a protocol
  grpc::Status s = stub_->CreateProtocol(Ctx(Secretariat(), "CreateProtocol").get(), create, &created);
  EXPECT_THAT(ViolatedFields(s), UnorderedElementsAre("protocol.title"));
}

}  // namespace
}  // namespace medkoord::intake::testing
