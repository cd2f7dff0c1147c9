// `medkoord <service> <method> [--field=value ...]`: every public method of
// every service, found in the descriptors linked into the CLI, so a method
// that lands in a service's proto is callable without CLI code.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "services/gateway/role_table.h"
#include "tools/medkoord/cli.h"

namespace medkoord::cli {
namespace {

namespace pb = google::protobuf;

const gateway::RoleTable& Table() {
  static const auto* table = [] {
    auto t = gateway::RoleTable::FromGeneratedPool();
    return new gateway::RoleTable(t.ok() ? *std::move(t) : gateway::RoleTable());
  }();
  return *table;
}

bool Next(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  return cq.Next(&tag, &ok) && ok;
}

}  // namespace

void PrintGenericHelp(const std::string& service) {
  for (const auto& route : Table().routes()) {
    if (!service.empty() && route.backend != service) continue;
    const std::string method = route.full_name.substr(route.full_name.rfind('/') + 1);
    std::string fields;
    for (int i = 0; i < route.input->field_count(); ++i) {
      absl::StrAppend(&fields, i ? " " : "", "--", route.input->field(i)->name());
    }
    std::printf("  medkoord %s %s%s  %s\n", route.backend.c_str(), Kebab(method).c_str(),
                route.client_streaming ? " (client stream: see dedicated commands)" : "", fields.c_str());
  }
}

int RunGeneric(Cli& cli, const std::string& service, bool* handled) {
  *handled = false;
  auto& args = cli.args();
  if (args.positional.size() < 2) return kUsage;
  const std::string wanted = args.positional[1];
  const gateway::MethodRoute* route = nullptr;
  for (const auto& r : Table().routes()) {
    if (r.backend != service) continue;
    const std::string method = r.full_name.substr(r.full_name.rfind('/') + 1);
    if (Kebab(method) == wanted || method == wanted) route = &r;
  }
  if (route == nullptr) return kUsage;
  *handled = true;
  if (route->client_streaming) {
    return cli.Usage(absl::StrCat(wanted, " streams its input; use its dedicated command"));
  }
  const pb::MethodDescriptor* method = pb::DescriptorPool::generated_pool()->FindMethodByName(
      absl::StrCat(route->service, ".", route->full_name.substr(route->full_name.rfind('/') + 1)));
  const pb::Message* in_proto = pb::MessageFactory::generated_factory()->GetPrototype(route->input);
  const pb::Message* out_proto = pb::MessageFactory::generated_factory()->GetPrototype(method->output_type());
  std::unique_ptr<pb::Message> request(in_proto->New());
  absl::Status fields = SetFieldsFromFlags(args, request.get(), "", {"json", "timeout", "addr", "api-key", "ca-file", "pretty"});
  if (!fields.ok()) return cli.Usage(std::string(fields.message()));
  for (size_t i = 2; i < args.positional.size(); ++i) {
    // A bare positional argument fills `name` (or `parent`) when the request has one.
    const char* field = route->input->FindFieldByName("name") ? "name" : "parent";
    absl::Status s = SetField(request.get(), field, args.positional[i]);
    if (!s.ok()) return cli.Usage(std::string(s.message()));
  }
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));

  grpc::GenericStub stub(*channel);
  grpc::ClientContext ctx;
  cli.Prepare(ctx, route->server_streaming ? absl::Hours(1) : absl::Seconds(30));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, route->full_name, &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  grpc::ByteBuffer out_buf;
  bool serialized = false;
  {
    grpc::ProtoBufferWriter writer(&out_buf, 8192, static_cast<int>(request->ByteSizeLong()));
    serialized = request->SerializeToZeroCopyStream(&writer);
  }
  bool started = Next(cq) && serialized;
  if (started) {
    call->Write(out_buf, reinterpret_cast<void*>(2));
    started = Next(cq);
  }
  if (started) {
    call->WritesDone(reinterpret_cast<void*>(3));
    Next(cq);
    while (true) {
      grpc::ByteBuffer in_buf;
      call->Read(&in_buf, reinterpret_cast<void*>(4));
      if (!Next(cq)) break;
      std::unique_ptr<pb::Message> response(out_proto->New());
      grpc::ProtoBufferReader reader(&in_buf);
      if (!response->ParseFromZeroCopyStream(&reader)) {
        std::fprintf(stderr, "medkoord: response does not parse\n");
        break;
      }
      std::cout << Cli::ToJson(*response, !cli.json() && !route->server_streaming) << std::endl;
    }
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  Next(cq);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return cli.Fail(status);
  return kOk;
}

}  // namespace medkoord::cli
