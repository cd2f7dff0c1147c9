// The gateway's callback-side server reflection, checked against gRPC's own
// message types (the descriptors libgrpc++_reflection registers), read with
// protobuf reflection, so the hand-written wire format is checked by an
// independent parser. And the builder option that keeps sync plugins out.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include "medkoord/intake/v1/intake.pb.h"
#include "services/gateway/role_table.h"
#include "services/gateway/server_reflection.h"

namespace medkoord::gateway {
namespace {

namespace pb = google::protobuf;

class ServerReflectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Loads libgrpc++_reflection, which registers the message descriptors.
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
    request_type_ = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
    response_type_ = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
    ASSERT_NE(request_type_, nullptr);
    ASSERT_NE(response_type_, nullptr);
    auto roles = RoleTable::FromGeneratedPool();
    ASSERT_TRUE(roles.ok()) << roles.status();
    std::vector<std::string> services = {"grpc.health.v1.Health"};
    for (const MethodRoute& r : roles->routes()) services.push_back(r.service);
    reflection_ = std::make_unique<ServerReflection>(services);
  }

  // A request with string field `field` (e.g. "list_services") set to `value`.
  std::string Request(const std::string& field, const std::string& value, const std::string& host = "") {
    std::unique_ptr<pb::Message> req(pb::MessageFactory::generated_factory()->GetPrototype(request_type_)->New());
    const pb::Reflection* r = req->GetReflection();
    r->SetString(req.get(), request_type_->FindFieldByName(field), value);
    if (!host.empty()) r->SetString(req.get(), request_type_->FindFieldByName("host"), host);
    return req->SerializeAsString();
  }

  std::unique_ptr<pb::Message> Answer(const std::string& request) {
    auto bytes = reflection_->Answer(request);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    std::unique_ptr<pb::Message> resp(pb::MessageFactory::generated_factory()->GetPrototype(response_type_)->New());
    EXPECT_TRUE(resp->ParseFromString(bytes.value_or("")));
    return resp;
  }

  static const pb::Message& Sub(const pb::Message& m, const std::string& field) {
    return m.GetReflection()->GetMessage(m, m.GetDescriptor()->FindFieldByName(field));
  }
  static bool Has(const pb::Message& m, const std::string& field) {
    return m.GetReflection()->HasField(m, m.GetDescriptor()->FindFieldByName(field));
  }

  // The serialized FileDescriptorProtos of a file_descriptor_response.
  static std::vector<pb::FileDescriptorProto> Files(const pb::Message& resp) {
    std::vector<pb::FileDescriptorProto> out;
    EXPECT_TRUE(Has(resp, "file_descriptor_response"));
    const pb::Message& files = Sub(resp, "file_descriptor_response");
    const pb::FieldDescriptor* f = files.GetDescriptor()->FindFieldByName("file_descriptor_proto");
    for (int i = 0; i < files.GetReflection()->FieldSize(files, f); ++i) {
      pb::FileDescriptorProto p;
      EXPECT_TRUE(p.ParseFromString(files.GetReflection()->GetRepeatedString(files, f, i)));
      out.push_back(p);
    }
    return out;
  }

  static int ErrorCode(const pb::Message& resp) {
    if (!Has(resp, "error_response")) return 0;
    const pb::Message& e = Sub(resp, "error_response");
    return e.GetReflection()->GetInt32(e, e.GetDescriptor()->FindFieldByName("error_code"));
  }

  const pb::Descriptor* request_type_ = nullptr;
  const pb::Descriptor* response_type_ = nullptr;
  std::unique_ptr<ServerReflection> reflection_;
};

TEST_F(ServerReflectionTest, ListsThePublicServicesHealthAndItself) {
  const std::string request = Request("list_services", "*", "gw.example:443");
  auto resp = Answer(request);
  const pb::Reflection* r = resp->GetReflection();
  EXPECT_EQ(r->GetString(*resp, response_type_->FindFieldByName("valid_host")), "gw.example:443");
  EXPECT_EQ(Sub(*resp, "original_request").SerializeAsString(), request);
  const pb::Message& list = Sub(*resp, "list_services_response");
  const pb::FieldDescriptor* service = list.GetDescriptor()->FindFieldByName("service");
  std::set<std::string> names;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service); ++i) {
    const pb::Message& s = list.GetReflection()->GetRepeatedMessage(list, service, i);
    names.insert(s.GetReflection()->GetString(s, s.GetDescriptor()->FindFieldByName("name")));
  }
  for (const char* want : {"medkoord.intake.v1.Intake", "medkoord.assessment.v1.Assessment",
                           "medkoord.gateway.v1.GatewayAdmin", "grpc.health.v1.Health",
                           "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  for (const std::string& n : names) EXPECT_FALSE(n.ends_with("Internal")) << n;
}

TEST_F(ServerReflectionTest, FileContainingSymbolCarriesEveryImportOnceSoAClientCanBuildIt) {
  auto files = Files(*Answer(Request("file_containing_symbol", "medkoord.intake.v1.Intake")));
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(files[0].name(), medkoord::intake::v1::GetApplicationRequest::descriptor()->file()->name());
  std::set<std::string> names;
  for (const auto& f : files) EXPECT_TRUE(names.insert(f.name()).second) << "twice: " << f.name();
  // What grpcurl does: build a pool from the answer alone, imports first.
  pb::DescriptorPool pool;
  std::vector<bool> built(files.size(), false);
  for (size_t round = 0; round < files.size(); ++round) {
    for (size_t i = 0; i < files.size(); ++i) {
      if (built[i]) continue;
      bool ready = true;
      for (const std::string& dep : files[i].dependency()) ready = ready && pool.FindFileByName(dep) != nullptr;
      if (ready) built[i] = pool.BuildFile(files[i]) != nullptr;
    }
  }
  const pb::ServiceDescriptor* intake = pool.FindServiceByName("medkoord.intake.v1.Intake");
  ASSERT_NE(intake, nullptr);
  EXPECT_NE(intake->FindMethodByName("GetApplication"), nullptr);
}

TEST_F(ServerReflectionTest, FileByNameExtensionsAndNumbers) {
  const std::string annotations = "medkoord/common/v1/annotations.proto";
  auto by_name = Files(*Answer(Request("file_by_filename", annotations)));
  ASSERT_FALSE(by_name.empty());
  EXPECT_EQ(by_name[0].name(), annotations);

  // file_containing_extension: allowed_roles extends MethodOptions as 51001.
  std::unique_ptr<pb::Message> req(pb::MessageFactory::generated_factory()->GetPrototype(request_type_)->New());
  const pb::FieldDescriptor* ext_field = request_type_->FindFieldByName("file_containing_extension");
  pb::Message* ext = req->GetReflection()->MutableMessage(req.get(), ext_field);
  ext->GetReflection()->SetString(ext, ext->GetDescriptor()->FindFieldByName("containing_type"),
                                  "google.protobuf.MethodOptions");
  ext->GetReflection()->SetInt32(ext, ext->GetDescriptor()->FindFieldByName("extension_number"), 51001);
  auto by_ext = Files(*Answer(req->SerializeAsString()));
  ASSERT_FALSE(by_ext.empty());
  EXPECT_EQ(by_ext[0].name(), annotations);

  auto numbers = Answer(Request("all_extension_numbers_of_type", "google.protobuf.MethodOptions"));
  const pb::Message& n = Sub(*numbers, "all_extension_numbers_response");
  EXPECT_EQ(n.GetReflection()->GetString(n, n.GetDescriptor()->FindFieldByName("base_type_name")),
            "google.protobuf.MethodOptions");
  const pb::FieldDescriptor* nf = n.GetDescriptor()->FindFieldByName("extension_number");
  std::set<int> got;
  for (int i = 0; i < n.GetReflection()->FieldSize(n, nf); ++i) got.insert(n.GetReflection()->GetRepeatedInt32(n, nf, i));
  EXPECT_TRUE(got.count(51001));
}

TEST_F(ServerReflectionTest, UnknownNamesAreNotFoundAnswersAndGarbageIsRefused) {
  EXPECT_EQ(ErrorCode(*Answer(Request("file_containing_symbol", "no.such.Symbol"))), 5);
  EXPECT_EQ(ErrorCode(*Answer(Request("file_by_filename", "no/such.proto"))), 5);
  EXPECT_EQ(ErrorCode(*Answer(Request("all_extension_numbers_of_type", "no.such.Type"))), 5);
  EXPECT_EQ(ErrorCode(*Answer(Request("host", "only-a-host"))), 3);  // no request set: INVALID_ARGUMENT
  EXPECT_FALSE(reflection_->Answer(std::string("\x1a\x05" "ab", 4)).ok());  // length past the end
}

TEST(ServerReflectionMethodTest, ServesBothVersionsOnly) {
  EXPECT_TRUE(ServerReflection::Serves("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
  EXPECT_TRUE(ServerReflection::Serves("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
  EXPECT_FALSE(ServerReflection::Serves("/grpc.reflection.v1.ServerReflection/Other"));
  EXPECT_FALSE(ServerReflection::Serves("/medkoord.intake.v1.Intake/GetApplication"));
}

class FakePlugin final : public grpc::ServerBuilderPlugin {
 public:
  FakePlugin(std::string name, bool sync) : name_(std::move(name)), sync_(sync) {}
  std::string name() override { return name_; }
  void InitServer(grpc::ServerInitializer*) override {}
  void Finish(grpc::ServerInitializer*) override {}
  void ChangeArguments(const std::string&, void*) override {}
  bool has_sync_methods() const override { return sync_; }

 private:
  std::string name_;
  bool sync_;
};

TEST(WithoutSyncPluginsTest, DropsOnlyPluginsWithSyncMethods) {
  std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>> plugins;
  plugins.push_back(std::make_unique<FakePlugin>("proto_server_reflection", true));
  plugins.push_back(std::make_unique<FakePlugin>("callback_only", false));
  WithoutSyncPlugins().UpdatePlugins(&plugins);
  ASSERT_EQ(plugins.size(), 1u);
  EXPECT_EQ(plugins[0]->name(), "callback_only");
}

}  // namespace
}  // namespace medkoord::gateway
