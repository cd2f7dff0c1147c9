#include "services/gateway/role_table.h"

#include <google/protobuf/descriptor.pb.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "medkoord/common/v1/annotations.pb.h"
#include "medkoord/gateway/v1/gateway.pb.h"

namespace medkoord::gateway {
namespace {

namespace pb = google::protobuf;
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// A service file built by hand: public methods with and without roles, a
// client stream, and an Internal service.
const pb::FileDescriptor* DemoFile(pb::DescriptorPool& pool) {
  pb::FileDescriptorProto file;
  file.set_name("medkoord/demo/v1/demo.proto");
  file.set_package("medkoord.demo.v1");
  file.set_syntax("proto3");
  auto* req = file.add_message_type();
  req->set_name("Req");
  auto* name = req->add_field();
  name->set_name("name");
  name->set_number(1);
  name->set_type(pb::FieldDescriptorProto::TYPE_STRING);
  name->set_label(pb::FieldDescriptorProto::LABEL_OPTIONAL);
  auto* svc = file.add_service();
  svc->set_name("Demo");
  auto add = [](pb::ServiceDescriptorProto* s, const char* n, std::vector<Role> roles, bool client_stream = false) {
    auto* m = s->add_method();
    m->set_name(n);
    m->set_input_type(".medkoord.demo.v1.Req");
    m->set_output_type(".medkoord.demo.v1.Req");
    m->set_client_streaming(client_stream);
    for (Role r : roles) m->mutable_options()->AddExtension(medkoord::common::v1::allowed_roles, r);
    return m;
  };
  add(svc, "Get", {medkoord::common::v1::ROLE_REGION, medkoord::common::v1::ROLE_FORUM_MEMBER});
  add(svc, "Hidden", {});
  add(svc, "ServiceOnly", {medkoord::common::v1::ROLE_SERVICE});
  auto* imp = add(svc, "Import", {medkoord::common::v1::ROLE_FORUM_SECRETARIAT}, true);
  imp->mutable_options()->SetExtension(medkoord::common::v1::audit_resource_field, "name");
  auto* internal = file.add_service();
  internal->set_name("DemoInternal");
  add(internal, "Apply", {medkoord::common::v1::ROLE_SERVICE, medkoord::common::v1::ROLE_ADMIN});
  return pool.BuildFile(file);
}

TEST(RoleTableTest, BuildsRoutesFromMethodOptions) {
  pb::DescriptorPool pool(pb::DescriptorPool::generated_pool());
  const pb::FileDescriptor* file = DemoFile(pool);
  ASSERT_NE(file, nullptr);
  auto table = RoleTable::FromFiles({file});
  ASSERT_TRUE(table.ok()) << table.status();

  const MethodRoute* get = table->Find("/medkoord.demo.v1.Demo/Get");
  ASSERT_NE(get, nullptr);
  EXPECT_EQ(get->backend, "demo");
  EXPECT_THAT(get->allowed_roles,
              ElementsAre(medkoord::common::v1::ROLE_REGION, medkoord::common::v1::ROLE_FORUM_MEMBER));
  EXPECT_FALSE(get->client_streaming);

  const MethodRoute* imp = table->Find("/medkoord.demo.v1.Demo/Import");
  ASSERT_NE(imp, nullptr);
  EXPECT_TRUE(imp->client_streaming);
  EXPECT_EQ(imp->audit_resource_field, "name");
}

TEST(RoleTableTest, NeverExposesInternalRoleLessOrServiceOnlyMethods) {
  pb::DescriptorPool pool(pb::DescriptorPool::generated_pool());
  auto table = RoleTable::FromFiles({DemoFile(pool)});
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->Find("/medkoord.demo.v1.Demo/Hidden"), nullptr);
  EXPECT_EQ(table->Find("/medkoord.demo.v1.Demo/ServiceOnly"), nullptr);
  EXPECT_EQ(table->Find("/medkoord.demo.v1.DemoInternal/Apply"), nullptr);
  EXPECT_EQ(table->Find("/medkoord.demo.v1.Demo/Nope"), nullptr);
  EXPECT_EQ(table->routes().size(), 2u);
}

TEST(RoleTableTest, AllowsOnlyListedRoles) {
  pb::DescriptorPool pool(pb::DescriptorPool::generated_pool());
  auto table = RoleTable::FromFiles({DemoFile(pool)});
  ASSERT_TRUE(table.ok());
  const MethodRoute* get = table->Find("/medkoord.demo.v1.Demo/Get");
  Principal member;
  member.set_id("m");
  member.add_roles(medkoord::common::v1::ROLE_FORUM_MEMBER);
  Principal analyst;
  analyst.set_id("a");
  analyst.add_roles(medkoord::common::v1::ROLE_ANALYST);
  Principal both = analyst;
  both.add_roles(medkoord::common::v1::ROLE_REGION);
  EXPECT_TRUE(table->Allows(*get, member));
  EXPECT_FALSE(table->Allows(*get, analyst));
  EXPECT_TRUE(table->Allows(*get, both));
  EXPECT_FALSE(table->Allows(*get, Principal()));
}

TEST(RoleTableTest, GeneratedPoolHasGatewayAdminForAdminsOnlyAndNoInternalServices) {
  auto table = RoleTable::FromGeneratedPool();
  ASSERT_TRUE(table.ok()) << table.status();
  for (const char* m : {"CreateApiKey", "ListApiKeys", "RevokeApiKey", "ListAuditRecords"}) {
    const MethodRoute* r = table->Find(std::string("/medkoord.gateway.v1.GatewayAdmin/") + m);
    ASSERT_NE(r, nullptr) << m;
    EXPECT_EQ(r->backend, "gateway");
    EXPECT_THAT(r->allowed_roles, ElementsAre(medkoord::common::v1::ROLE_ADMIN));
  }
  for (const auto& r : table->routes()) {
    EXPECT_EQ(r.service.find("Internal"), std::string::npos) << r.full_name;
    EXPECT_FALSE(r.allowed_roles.empty()) << r.full_name;
    for (Role role : r.allowed_roles) EXPECT_NE(role, medkoord::common::v1::ROLE_SERVICE) << r.full_name;
  }
  EXPECT_THAT(table->Backends(), ::testing::Contains("gateway"));
}

TEST(RoleTableTest, BackendOfPackage) {
  EXPECT_EQ(BackendOfPackage("medkoord.intake.v1"), "intake");
  EXPECT_EQ(BackendOfPackage("medkoord.rwd.v2"), "rwd");
  EXPECT_EQ(BackendOfPackage("medkoord.common.v1"), "");
  EXPECT_EQ(BackendOfPackage("google.rpc"), "");
  EXPECT_EQ(BackendOfPackage("medkoord.intake"), "");
}

TEST(RoleTableTest, StringFieldByPath) {
  medkoord::gateway::v1::CreateApiKeyRequest req;
  req.mutable_api_key()->set_principal_id("syddanmark-it");
  EXPECT_EQ(StringFieldByPath(req, "api_key.principal_id"), "syddanmark-it");
  EXPECT_EQ(StringFieldByPath(req, "request_id"), "");
  EXPECT_EQ(StringFieldByPath(req, "api_key.roles"), "");   // repeated
  EXPECT_EQ(StringFieldByPath(req, "nope.x"), "");
  medkoord::gateway::v1::CreateApiKeyRequest empty;
  EXPECT_EQ(StringFieldByPath(empty, "api_key.principal_id"), "");
}

}  // namespace
}  // namespace medkoord::gateway
