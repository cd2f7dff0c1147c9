// The proxy's per-call parts that need no network: the audit resource read
// from wire bytes, the traceparent decision, the signature cache and the
// authenticator's non-blocking miss path.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/principal.h"
#include "medkoord/assessment/v1/assessment.pb.h"
#include "medkoord/intake/v1/intake.pb.h"
#include "medkoord/shortage/v1/shortage.pb.h"
#include "services/gateway/api_key.h"
#include "services/gateway/audit_resource.h"
#include "services/gateway/authenticator.h"
#include "services/gateway/proxy.h"
#include "services/gateway/role_table.h"
#include "services/gateway/signature_cache.h"

namespace medkoord::gateway {
namespace {

namespace iv1 = medkoord::intake::v1;
namespace sv1 = medkoord::shortage::v1;
namespace av1 = medkoord::assessment::v1;

TEST(ResourceFieldReaderTest, ReadsNameElseParentAsTheParserWould) {
  ResourceFieldReader get(iv1::GetApplicationRequest::descriptor(), "");
  iv1::GetApplicationRequest req;
  req.set_name("regions/syddanmark/applications/A-1");
  EXPECT_EQ(get.Read(req.SerializeAsString()), "regions/syddanmark/applications/A-1");
  // A repeated scalar field on the wire: the last one counts, as in parsing.
  std::string twice = req.SerializeAsString();
  req.set_name("regions/nordjylland/applications/B-2");
  twice += req.SerializeAsString();
  EXPECT_EQ(get.Read(twice), "regions/nordjylland/applications/B-2");
  EXPECT_EQ(get.Read(std::string()), "");

  ResourceFieldReader list(iv1::ListApplicationsRequest::descriptor(), "");
  iv1::ListApplicationsRequest lr;
  lr.set_parent("regions/hovedstaden");
  lr.set_page_size(7);
  lr.set_page_token("tok");
  EXPECT_EQ(list.Read(lr.SerializeAsString()), "regions/hovedstaden");
}

TEST(ResourceFieldReaderTest, FollowsNestedPathsAndRendersIntegers) {
  ResourceFieldReader announce(sv1::AnnounceShortageRequest::descriptor(), "shortage.drug.atc_code");
  sv1::AnnounceShortageRequest req;
  req.set_request_id("r-1");
  req.mutable_shortage()->mutable_drug()->set_name("peginterferon alfa-2a");
  req.mutable_shortage()->mutable_drug()->set_atc_code("L03AB11");
  req.mutable_shortage()->set_name("shortages/x");
  const std::string bytes = req.SerializeAsString();
  EXPECT_EQ(announce.Read(bytes), "L03AB11");
  // From a ByteBuffer made of several slices, as gRPC hands them over.
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i < bytes.size(); i += 5) slices.emplace_back(bytes.substr(i, 5));
  grpc::ByteBuffer buffer(slices.data(), slices.size());
  EXPECT_EQ(announce.Read(buffer), "L03AB11");

  ResourceFieldReader report(av1::GetAnnualReportRequest::descriptor(), "year");
  av1::GetAnnualReportRequest rr;
  rr.set_year(2024);
  EXPECT_EQ(report.Read(rr.SerializeAsString()), "2024");
}

TEST(ResourceFieldReaderTest, GarbageAndUnresolvablePathsReadAsEmpty) {
  ResourceFieldReader get(iv1::GetApplicationRequest::descriptor(), "");
  EXPECT_EQ(get.Read(std::string("\x0a\x7f" "abc", 5)), "");  // length past the end
  EXPECT_EQ(get.Read(std::string("\xff\xff\xff", 3)), "");
  ResourceFieldReader missing(iv1::GetApplicationRequest::descriptor(), "no.such.field");
  iv1::GetApplicationRequest req;
  req.set_name("x");
  EXPECT_EQ(missing.Read(req.SerializeAsString()), "");
}

TEST(ResourceFieldReaderTest, EveryRoutesReaderHandlesAnEmptyRequest) {
  auto table = RoleTable::FromGeneratedPool();
  ASSERT_TRUE(table.ok());
  for (const MethodRoute& route : table->routes()) {
    if (route.input == nullptr) continue;
    ResourceFieldReader reader(route.input, route.audit_resource_field);
    // An empty request names nothing, whatever the method.
    EXPECT_EQ(reader.Read(std::string()), "") << route.full_name;
  }
}

TEST(TraceparentTest, PassesAValidOneOnUnchanged) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(TraceparentFor(tp, "whatever"), tp);
  // A future version may carry more fields after the flags.
  const std::string future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
  EXPECT_EQ(TraceparentFor(future, "x"), future);
}

TEST(TraceparentTest, StartsATraceWhenAbsentOrInvalid) {
  const std::string request_id = "0123456789abcdef0123456789abcdef";
  for (const std::string& bad :
       {std::string(), std::string("garbage"), std::string("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
        std::string("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")}) {
    const std::string tp = TraceparentFor(bad, request_id);
    ASSERT_EQ(tp.size(), 55u) << bad;
    EXPECT_EQ(tp.substr(0, 3), "00-");
    EXPECT_EQ(tp.substr(3, 32), request_id) << "the trace id is the request id";
    EXPECT_EQ(tp.substr(52), "-01");
    EXPECT_EQ(TraceparentFor(tp, "other"), tp) << "a generated one is itself valid";
  }
  // A request id that is not 32 hex characters gets a fresh trace id.
  const std::string tp = TraceparentFor("", "my-own-request-id");
  EXPECT_EQ(TraceparentFor(tp, ""), tp);
  EXPECT_NE(tp.substr(3, 32), TraceparentFor("", "my-own-request-id").substr(3, 32));
}

TEST(SignatureCacheTest, ReusesASignatureForHalfItsLifetimeAndKeepsPrincipalsApart) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  auto signer = PrincipalSigner::Create(std::string(32, 'k'), &clock);
  ASSERT_TRUE(signer.ok());
  SignatureCache cache(&*signer, &clock, absl::Seconds(60));
  Principal p;
  p.set_id("sec-1");
  p.add_roles(medkoord::common::v1::ROLE_FORUM_SECRETARIAT);
  const std::string method = "/medkoord.intake.v1.Intake/GetApplication";

  PrincipalSigner::Signed first = cache.Get(p, method);
  EXPECT_TRUE(signer->Verify(first.principal_bin, first.signature_bin, method).ok());
  clock.Advance(absl::Seconds(29));
  EXPECT_EQ(cache.Get(p, method).principal_bin, first.principal_bin);
  clock.Advance(absl::Seconds(1));
  PrincipalSigner::Signed renewed = cache.Get(p, method);
  EXPECT_NE(renewed.principal_bin, first.principal_bin);
  EXPECT_TRUE(signer->Verify(renewed.principal_bin, renewed.signature_bin, method).ok());

  // Another method, or the same id with other roles, is signed on its own.
  const std::string other = "/medkoord.intake.v1.Intake/ListApplications";
  EXPECT_TRUE(signer->Verify(cache.Get(p, other).principal_bin, cache.Get(p, other).signature_bin, other).ok());
  EXPECT_FALSE(signer->Verify(cache.Get(p, other).principal_bin, cache.Get(p, other).signature_bin, method).ok());
  Principal q = p;
  q.clear_roles();
  q.add_roles(medkoord::common::v1::ROLE_ANALYST);
  auto verified = signer->Verify(cache.Get(q, method).principal_bin, cache.Get(q, method).signature_bin, method);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(verified->roles(0), medkoord::common::v1::ROLE_ANALYST);
}

// A lookup the test releases by hand, counting the calls.
struct GatedLookup {
  absl::Notification release;
  std::atomic<int> calls{0};
  std::optional<Principal> answer;
  Authenticator::KeyLookup Fn() {
    return [this](const std::string&) -> absl::StatusOr<std::optional<Principal>> {
      ++calls;
      release.WaitForNotification();
      return answer;
    };
  }
};

TEST(AuthenticatorTest, MissIsAnsweredOnALookupThreadAndSharedByConcurrentCallers) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  GatedLookup lookup;
  lookup.answer = Principal();
  lookup.answer->set_id("sec-1");
  Authenticator auth(lookup.Fn(), std::nullopt, &clock, absl::Seconds(5));
  const std::thread::id caller = std::this_thread::get_id();

  absl::Notification a_done, b_done;
  std::thread::id a_thread;
  std::string a_id, b_id;
  auth.AuthenticateAsync("mk_key", PeerCertificate{}, [&](absl::StatusOr<Principal> p) {
    a_thread = std::this_thread::get_id();
    a_id = p.ok() ? p->id() : "error";
    a_done.Notify();
  });
  auth.AuthenticateAsync("mk_key", PeerCertificate{}, [&](absl::StatusOr<Principal> p) {
    b_id = p.ok() ? p->id() : "error";
    b_done.Notify();
  });
  // Both returned without an answer: the lookup is still held.
  EXPECT_FALSE(a_done.HasBeenNotified());
  lookup.release.Notify();
  a_done.WaitForNotification();
  b_done.WaitForNotification();
  EXPECT_EQ(a_id, "sec-1");
  EXPECT_EQ(b_id, "sec-1");
  EXPECT_NE(a_thread, caller);
  EXPECT_EQ(lookup.calls.load(), 1);

  // Now cached: answered at once on the calling thread, no lookup.
  bool inline_answer = false;
  auth.AuthenticateAsync("mk_key", PeerCertificate{}, [&](absl::StatusOr<Principal> p) {
    inline_answer = p.ok() && std::this_thread::get_id() == caller;
  });
  EXPECT_TRUE(inline_answer);
  EXPECT_EQ(lookup.calls.load(), 1);

  // After the cache lifetime the key is checked again (a revocation elsewhere
  // takes effect within it); Forget() drops it at once.
  lookup.answer.reset();
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(auth.Authenticate("mk_key", PeerCertificate{}).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(lookup.calls.load(), 2);
}

TEST(AuthenticatorTest, ForgetDropsCachedKeysAndNoCredentialsNeedNoLookup) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  GatedLookup lookup;
  lookup.release.Notify();
  lookup.answer = Principal();
  lookup.answer->set_id("sec-1");
  Authenticator auth(lookup.Fn(), std::nullopt, &clock, absl::Seconds(5));
  EXPECT_TRUE(auth.Authenticate("mk_key", PeerCertificate{}).ok());
  lookup.answer.reset();  // revoked
  EXPECT_TRUE(auth.Authenticate("mk_key", PeerCertificate{}).ok()) << "cached";
  auth.Forget();
  EXPECT_EQ(auth.Authenticate("mk_key", PeerCertificate{}).status().code(), absl::StatusCode::kUnauthenticated);

  absl::StatusCode code = absl::StatusCode::kOk;
  auth.AuthenticateAsync("", PeerCertificate{}, [&](absl::StatusOr<Principal> p) { code = p.status().code(); });
  EXPECT_EQ(code, absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(lookup.calls.load(), 2);
}

TEST(AuthenticatorTest, DatabaseTroubleIsUnavailable) {
  FakeClock clock(absl::FromUnixSeconds(1700000000));
  Authenticator auth([](const std::string&) -> absl::StatusOr<std::optional<Principal>> {
    return absl::UnavailableError("connection refused");
  }, std::nullopt, &clock);
  absl::Notification done;
  absl::StatusCode code = absl::StatusCode::kOk;
  auth.AuthenticateAsync("mk_key", PeerCertificate{}, [&](absl::StatusOr<Principal> p) {
    code = p.status().code();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(code, absl::StatusCode::kUnavailable);
}

TEST(StatusForCallerTest, BackendCancellationIsUnavailableCallersOwnStaysCancelled) {
  // gRPC's status for a call its server shut down on before a handler took it.
  const grpc::Status shut_down(grpc::StatusCode::CANCELLED, "CANCELLED");
  grpc::Status s = StatusForCaller(shut_down, "shortage", /*cancelled_by_caller=*/false);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(s.error_message().find("shortage"), std::string::npos) << s.error_message();
  EXPECT_EQ(StatusForCaller(shut_down, "shortage", /*cancelled_by_caller=*/true).error_code(),
            grpc::StatusCode::CANCELLED);

  EXPECT_EQ(StatusForCaller(grpc::Status(grpc::StatusCode::UNAVAILABLE, ""), "intake", false).error_message(),
            "intake is unavailable");
  const grpc::Status denied(grpc::StatusCode::PERMISSION_DENIED, "not yours", "details");
  s = StatusForCaller(denied, "intake", false);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "not yours");
  EXPECT_EQ(s.error_details(), "details");
  EXPECT_TRUE(StatusForCaller(grpc::Status::OK, "intake", false).ok());
}

}  // namespace
}  // namespace medkoord::gateway
