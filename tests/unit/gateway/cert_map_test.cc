#include "services/gateway/cert_map.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace medkoord::gateway {
namespace {

TEST(CertMapTest, MapsSubjectsAndCommonNames) {
  auto map = CertMap::Parse(R"({"certificates": [
      {"subject": "CN=syddanmark-it,O=Region Syddanmark,C=DK", "principal_id": "syddanmark-it",
       "roles": ["region"], "region": "syddanmark", "display_name": "Region Syddanmark IT"},
      {"subject": "CN=taskforce-client", "principal_id": "taskforce", "roles": ["task_force", "forum_member"]}]})");
  ASSERT_TRUE(map.ok()) << map.status();
  auto p = map->Find("CN=syddanmark-it,O=Region Syddanmark,C=DK", "syddanmark-it");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->id(), "syddanmark-it");
  EXPECT_EQ(p->region(), medkoord::common::v1::REGION_SYDDANMARK);
  EXPECT_TRUE(HasRole(*p, medkoord::common::v1::ROLE_REGION));
  auto t = map->Find("CN=taskforce-client,O=Anything", "taskforce-client");
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(HasRole(*t, medkoord::common::v1::ROLE_TASK_FORCE));
  EXPECT_FALSE(map->Find("CN=stranger", "stranger").has_value());
  EXPECT_FALSE(map->Find("", "").has_value());
}

TEST(CertMapTest, ReportsEveryBadEntryAtOnce) {
  auto map = CertMap::Parse(R"({"certificates": [
      {"subject": "", "principal_id": "x", "roles": ["region"]},
      {"subject": "CN=a", "principal_id": "", "roles": ["wizard"]},
      {"subject": "CN=b", "principal_id": "b", "roles": ["analyst"], "region": "syddanmark"}]})");
  ASSERT_FALSE(map.ok());
  auto v = FieldViolationsOf(map.status());
  std::set<std::string> fields;
  for (const auto& [f, _] : v) fields.insert(f);
  EXPECT_TRUE(fields.count("certificates[0].subject"));
  EXPECT_TRUE(fields.count("certificates[0].region"));  // region role without region
  EXPECT_TRUE(fields.count("certificates[1].roles"));
  EXPECT_TRUE(fields.count("certificates[1].principal_id"));
  EXPECT_TRUE(fields.count("certificates[2].region"));  // region without the region role
}

TEST(CertMapTest, RejectsMalformedJson) {
  EXPECT_FALSE(CertMap::Parse("{").ok());
  EXPECT_FALSE(CertMap::Parse("[]").ok());
}

}  // namespace
}  // namespace medkoord::gateway
