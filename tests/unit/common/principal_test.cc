#include "common/principal.h"

#include <gtest/gtest.h>

namespace medkoord {
namespace {

constexpr char kMethod[] = "/medkoord.intake.v1.Intake/GetApplication";
const std::string kKey(32, 'k');

Principal RegionCaller() {
  Principal p;
  p.set_id("apikey:abc");
  p.add_roles(medkoord::common::v1::ROLE_REGION);
  p.set_region(medkoord::common::v1::REGION_SYDDANMARK);
  return p;
}

TEST(PrincipalSignerTest, RejectsShortKeys) {
  EXPECT_FALSE(PrincipalSigner::Create(std::string(31, 'k')).ok());
  EXPECT_TRUE(PrincipalSigner::Create(kKey).ok());
}

TEST(PrincipalSignerTest, VerifiesWhatItSigned) {
  auto signer = *PrincipalSigner::Create(kKey);
  auto s = signer.Sign(RegionCaller(), kMethod, absl::Seconds(60));
  auto p = signer.Verify(s.principal_bin, s.signature_bin, kMethod);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id(), "apikey:abc");
  EXPECT_EQ(p->region(), medkoord::common::v1::REGION_SYDDANMARK);
  EXPECT_TRUE(HasRole(*p, medkoord::common::v1::ROLE_REGION));
  EXPECT_FALSE(HasRole(*p, medkoord::common::v1::ROLE_FORUM_SECRETARIAT));
}

TEST(PrincipalSignerTest, RefusesForgedTamperedOtherMethodAndOtherKey) {
  auto signer = *PrincipalSigner::Create(kKey);
  auto s = signer.Sign(RegionCaller(), kMethod, absl::Seconds(60));

  // Tampering: the caller claims another region.
  medkoord::common::v1::SignedPrincipal sp;
  ASSERT_TRUE(sp.ParseFromString(s.principal_bin));
  sp.mutable_principal()->set_region(medkoord::common::v1::REGION_HOVEDSTADEN);
  EXPECT_EQ(signer.Verify(sp.SerializeAsString(), s.signature_bin, kMethod).status().code(),
            absl::StatusCode::kUnauthenticated);

  EXPECT_EQ(signer.Verify(s.principal_bin, s.signature_bin, "/medkoord.intake.v1.Intake/WithdrawApplication")
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(signer.Verify(s.principal_bin, "", kMethod).status().code(), absl::StatusCode::kUnauthenticated);

  auto other = *PrincipalSigner::Create(std::string(32, 'x'));
  EXPECT_EQ(other.Verify(s.principal_bin, s.signature_bin, kMethod).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(PrincipalSignerTest, RefusesExpired) {
  FakeClock clock(absl::FromUnixSeconds(1'700'000'000));
  auto signer = *PrincipalSigner::Create(kKey, &clock);
  auto s = signer.Sign(RegionCaller(), kMethod, absl::Seconds(30));
  clock.Advance(absl::Seconds(29));
  EXPECT_TRUE(signer.Verify(s.principal_bin, s.signature_bin, kMethod).ok());
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(signer.Verify(s.principal_bin, s.signature_bin, kMethod).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(RegionsTest, SlugsRoundTrip) {
  for (int r = 1; r <= 5; ++r) {
    auto region = static_cast<Region>(r);
    auto back = RegionFromSlug(RegionSlug(region));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, region);
  }
  EXPECT_EQ(RegionSlug(medkoord::common::v1::REGION_SJAELLAND), "sjaelland");
  EXPECT_FALSE(RegionFromSlug("jylland").has_value());
  EXPECT_EQ(RoleFromName("task_force"), medkoord::common::v1::ROLE_TASK_FORCE);
  EXPECT_FALSE(RoleFromName("root").has_value());
}

TEST(ServicePrincipalTest, HasOnlyTheServiceRole) {
  Principal p = ServicePrincipal("intake");
  EXPECT_EQ(p.id(), "service:intake");
  ASSERT_EQ(p.roles_size(), 1);
  EXPECT_TRUE(HasRole(p, medkoord::common::v1::ROLE_SERVICE));
}

}  // namespace
}  // namespace medkoord
