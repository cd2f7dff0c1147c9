#include "common/reflection_client.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"

namespace medkoord {
namespace {

constexpr char kMethod[] = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

// Waits for the completion-queue event of `tag`.
bool Await(grpc::CompletionQueue& cq, void* tag, absl::Time deadline) {
  void* got = nullptr;
  bool ok = false;
  auto status = cq.AsyncNext(&got, &ok, absl::ToChronoTime(deadline));
  return status == grpc::CompletionQueue::GOT_EVENT && got == tag && ok;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListServicesByReflection(const std::shared_ptr<grpc::Channel>& channel,
                                                                  absl::Duration timeout) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* req_desc = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const auto* resp_desc = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  if (req_desc == nullptr || resp_desc == nullptr) {
    // The reflection library registers them when it is loaded; make sure.
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    req_desc = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
    resp_desc = pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
    if (req_desc == nullptr || resp_desc == nullptr) return absl::InternalError("reflection descriptors missing");
  }
  google::protobuf::DynamicMessageFactory factory(pool);
  std::unique_ptr<google::protobuf::Message> req(factory.GetPrototype(req_desc)->New());
  req->GetReflection()->SetString(req.get(), req_desc->FindFieldByName("list_services"), "*");
  std::string req_bytes = req->SerializeAsString();

  const absl::Time deadline = absl::Now() + timeout;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, kMethod, &cq);
  int tags[5];
  call->StartCall(&tags[0]);
  if (!Await(cq, &tags[0], deadline)) return absl::UnavailableError("reflection: cannot start call");
  grpc::Slice slice(req_bytes);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, &tags[1]);
  if (!Await(cq, &tags[1], deadline)) return absl::UnavailableError("reflection: write failed");
  call->WritesDone(&tags[2]);
  if (!Await(cq, &tags[2], deadline)) return absl::UnavailableError("reflection: writes-done failed");
  grpc::ByteBuffer in;
  call->Read(&in, &tags[3]);
  const bool got = Await(cq, &tags[3], deadline);
  grpc::Status status;
  call->Finish(&status, &tags[4]);
  Await(cq, &tags[4], deadline);
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
  if (!status.ok()) return FromGrpcStatus(status);
  if (!got) return absl::UnavailableError("reflection: no response");

  std::vector<grpc::Slice> slices;
  in.Dump(&slices);
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::unique_ptr<google::protobuf::Message> resp(factory.GetPrototype(resp_desc)->New());
  if (!resp->ParseFromString(bytes)) return absl::InternalError("reflection: response does not parse");
  const auto* list_field = resp_desc->FindFieldByName("list_services_response");
  const auto& list = resp->GetReflection()->GetMessage(*resp, list_field);
  const auto* service_field = list.GetDescriptor()->FindFieldByName("service");
  std::vector<std::string> names;
  const int n = list.GetReflection()->FieldSize(list, service_field);
  for (int i = 0; i < n; ++i) {
    const auto& service = list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    names.push_back(service.GetReflection()->GetString(service, service.GetDescriptor()->FindFieldByName("name")));
  }
  return names;
}

}  // namespace medkoord
