#include "services/gateway/server_reflection.h"

#include <algorithm>
#include <set>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include "absl/strings/str_cat.h"

namespace medkoord::gateway {
namespace {

namespace pb = google::protobuf;
using pb::internal::WireFormatLite;

// reflection.proto's field numbers.
// ServerReflectionRequest
constexpr int kReqHost = 1;
constexpr int kReqFileByFilename = 3;
constexpr int kReqFileContainingSymbol = 4;
constexpr int kReqFileContainingExtension = 5;  // ExtensionRequest
constexpr int kReqAllExtensionNumbersOfType = 6;
constexpr int kReqListServices = 7;
// ExtensionRequest
constexpr int kExtContainingType = 1;
constexpr int kExtNumber = 2;
// ServerReflectionResponse
constexpr int kRespValidHost = 1;
constexpr int kRespOriginalRequest = 2;
constexpr int kRespFileDescriptor = 4;      // FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
constexpr int kRespExtensionNumbers = 5;    // ExtensionNumberResponse { base_type_name = 1; repeated int32 = 2; }
constexpr int kRespListServices = 6;        // ListServiceResponse { repeated ServiceResponse service = 1; }
constexpr int kRespError = 7;               // ErrorResponse { int32 error_code = 1; string error_message = 2; }

constexpr char kV1Alpha[] = "grpc.reflection.v1alpha.ServerReflection";
constexpr char kV1[] = "grpc.reflection.v1.ServerReflection";

struct Request {
  std::string host;
  int which = 0;  // the oneof's field number, 0 if unset (the last one set wins)
  std::string name;
  std::string containing_type;
  int32_t extension_number = 0;
};

bool ReadString(pb::io::CodedInputStream& in, std::string* out) {
  uint32_t length = 0;
  return in.ReadVarint32(&length) && in.ReadString(out, static_cast<int>(length));
}

bool ParseExtensionRequest(const std::string& bytes, Request* r) {
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  r->containing_type.clear();
  r->extension_number = 0;
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const auto type = WireFormatLite::GetTagWireType(tag);
    if (field == kExtContainingType && type == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!ReadString(in, &r->containing_type)) return false;
    } else if (field == kExtNumber && type == WireFormatLite::WIRETYPE_VARINT) {
      uint32_t v = 0;
      if (!in.ReadVarint32(&v)) return false;
      r->extension_number = static_cast<int32_t>(v);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return in.ConsumedEntireMessage();
}

bool Parse(std::string_view bytes, Request* r) {
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()), static_cast<int>(bytes.size()));
  while (uint32_t tag = in.ReadTag()) {
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    if (WireFormatLite::GetTagWireType(tag) != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    switch (field) {
      case kReqHost:
        if (!ReadString(in, &r->host)) return false;
        break;
      case kReqFileByFilename:
      case kReqFileContainingSymbol:
      case kReqAllExtensionNumbersOfType:
      case kReqListServices:
        r->which = field;
        if (!ReadString(in, &r->name)) return false;
        break;
      case kReqFileContainingExtension: {
        r->which = field;
        std::string nested;
        if (!ReadString(in, &nested) || !ParseExtensionRequest(nested, r)) return false;
        break;
      }
      default:
        if (!WireFormatLite::SkipField(&in, tag)) return false;
    }
  }
  return in.ConsumedEntireMessage();
}

// Appends field `number` with `bytes` (a string, bytes or an embedded message).
void PutBytes(std::string* out, int number, std::string_view bytes) {
  pb::io::StringOutputStream stream(out);
  pb::io::CodedOutputStream o(&stream);
  o.WriteTag(WireFormatLite::MakeTag(number, WireFormatLite::WIRETYPE_LENGTH_DELIMITED));
  o.WriteVarint32(static_cast<uint32_t>(bytes.size()));
  o.WriteRaw(bytes.data(), static_cast<int>(bytes.size()));
}

void PutInt32(std::string* out, int number, int32_t value) {
  pb::io::StringOutputStream stream(out);
  pb::io::CodedOutputStream o(&stream);
  o.WriteTag(WireFormatLite::MakeTag(number, WireFormatLite::WIRETYPE_VARINT));
  o.WriteVarint32SignExtended(value);
}

// `file` and, depth first, every file it imports, each once per response (as
// gRPC's own reflection service answers, so a client can build the pool).
void AddFile(const pb::FileDescriptor* file, std::set<std::string>* seen, std::string* response) {
  if (!seen->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  PutBytes(response, 1, proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i), seen, response);
}

std::string Error(int code, std::string_view message) {
  std::string e;
  PutInt32(&e, 1, code);
  PutBytes(&e, 2, message);
  return e;
}

}  // namespace

ServerReflection::ServerReflection(std::vector<std::string> services, const pb::DescriptorPool* pool)
    : services_(std::move(services)), pool_(pool) {
  services_.push_back(kV1Alpha);
  services_.push_back(kV1);
  std::sort(services_.begin(), services_.end());
  services_.erase(std::unique(services_.begin(), services_.end()), services_.end());
}

bool ServerReflection::Serves(std::string_view full_method) {
  return full_method == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo" ||
         full_method == "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
}

absl::StatusOr<std::string> ServerReflection::Answer(std::string_view request) const {
  Request r;
  if (!Parse(request, &r)) return absl::InvalidArgumentError("reflection request does not parse");
  std::string response;
  PutBytes(&response, kRespValidHost, r.host);
  PutBytes(&response, kRespOriginalRequest, request);
  std::set<std::string> seen;
  std::string body;
  auto file_or_not_found = [&](const pb::FileDescriptor* file, const char* what) {
    if (file == nullptr) {
      PutBytes(&response, kRespError, Error(static_cast<int>(grpc::StatusCode::NOT_FOUND), what));
      return;
    }
    AddFile(file, &seen, &body);
    PutBytes(&response, kRespFileDescriptor, body);
  };
  switch (r.which) {
    case kReqListServices:
      for (const std::string& s : services_) {
        std::string service;
        PutBytes(&service, 1, s);
        PutBytes(&body, 1, service);
      }
      PutBytes(&response, kRespListServices, body);
      break;
    case kReqFileByFilename:
      file_or_not_found(pool_->FindFileByName(r.name), "File not found.");
      break;
    case kReqFileContainingSymbol:
      file_or_not_found(pool_->FindFileContainingSymbol(r.name), "Symbol not found.");
      break;
    case kReqFileContainingExtension: {
      const pb::Descriptor* type = pool_->FindMessageTypeByName(r.containing_type);
      const pb::FieldDescriptor* ext = type == nullptr ? nullptr : pool_->FindExtensionByNumber(type, r.extension_number);
      file_or_not_found(ext == nullptr ? nullptr : ext->file(), "Extension not found.");
      break;
    }
    case kReqAllExtensionNumbersOfType: {
      const pb::Descriptor* type = pool_->FindMessageTypeByName(r.name);
      if (type == nullptr) {
        PutBytes(&response, kRespError, Error(static_cast<int>(grpc::StatusCode::NOT_FOUND), "Type not found."));
        break;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool_->FindAllExtensions(type, &extensions);
      PutBytes(&body, 1, type->full_name());
      for (const pb::FieldDescriptor* e : extensions) PutInt32(&body, 2, e->number());
      PutBytes(&response, kRespExtensionNumbers, body);
      break;
    }
    default:
      PutBytes(&response, kRespError,
               Error(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT), "No request set."));
  }
  return response;
}

void WithoutSyncPlugins::UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) {
  plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                  return p->has_sync_methods();
                                }),
                 plugins->end());
}

std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

}  // namespace medkoord::gateway
