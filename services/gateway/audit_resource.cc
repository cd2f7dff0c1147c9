#include "services/gateway/audit_resource.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <optional>

#include "absl/strings/str_split.h"

namespace medkoord::gateway {
namespace {

namespace pb = google::protobuf;
using pb::internal::WireFormatLite;

bool IsInteger(const pb::FieldDescriptor& f) {
  switch (f.type()) {
    case pb::FieldDescriptor::TYPE_INT32:
    case pb::FieldDescriptor::TYPE_INT64:
    case pb::FieldDescriptor::TYPE_UINT32:
    case pb::FieldDescriptor::TYPE_UINT64: return true;
    default: return false;
  }
}

// Scans the message at the stream's current limit for path[depth..]. Returns
// false if the bytes do not parse. `out` keeps the last value found.
bool Scan(pb::io::CodedInputStream& in, const std::vector<int>& path, size_t depth, bool integer,
          std::optional<std::string>& out) {
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) return in.ConsumedEntireMessage();
    const int number = WireFormatLite::GetTagFieldNumber(tag);
    const auto wire_type = WireFormatLite::GetTagWireType(tag);
    if (number != path[depth]) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    const bool leaf = depth + 1 == path.size();
    if (leaf && integer && wire_type == WireFormatLite::WIRETYPE_VARINT) {
      uint64_t v = 0;
      if (!in.ReadVarint64(&v)) return false;
      out = std::to_string(static_cast<int64_t>(v));
      continue;
    }
    if (wire_type != WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return false;
    if (leaf) {
      std::string value;
      if (!in.ReadString(&value, static_cast<int>(length))) return false;
      if (!integer) out = std::move(value);
      continue;
    }
    const auto limit = in.PushLimit(static_cast<int>(length));
    if (!Scan(in, path, depth + 1, integer, out)) return false;
    in.PopLimit(limit);
  }
}

// The value at `path` ("" when absent), or nullopt when the bytes do not parse.
std::optional<std::string> ReadPath(pb::io::ZeroCopyInputStream* stream, const std::vector<int>& path, bool integer) {
  pb::io::CodedInputStream in(stream);
  std::optional<std::string> value;
  if (!Scan(in, path, 0, integer, value)) return std::nullopt;
  return value.value_or("");
}

}  // namespace

ResourceFieldReader::ResourceFieldReader(const pb::Descriptor* input, std::string_view field_path) {
  if (input == nullptr) return;
  auto resolve = [input](std::string_view dotted) -> std::optional<Path> {
    Path path;
    const pb::Descriptor* current = input;
    std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(dotted.data(), dotted.size()), '.');
    for (size_t i = 0; i < parts.size(); ++i) {
      if (current == nullptr) return std::nullopt;
      const pb::FieldDescriptor* field = current->FindFieldByName(std::string(parts[i]));
      if (field == nullptr || field->is_repeated()) return std::nullopt;
      path.numbers.push_back(field->number());
      if (i + 1 == parts.size()) {
        if (field->type() == pb::FieldDescriptor::TYPE_STRING) return path;
        if (IsInteger(*field)) {
          path.integer = true;
          return path;
        }
        return std::nullopt;
      }
      current = field->message_type();
    }
    return std::nullopt;
  };
  if (!field_path.empty()) {
    if (auto p = resolve(field_path)) candidates_.push_back(*std::move(p));
    return;
  }
  for (std::string_view fallback : {"name", "parent"}) {
    if (auto p = resolve(fallback)) candidates_.push_back(*std::move(p));
  }
}

std::string ResourceFieldReader::Read(const grpc::ByteBuffer& request) const {
  for (const Path& path : candidates_) {
    // The reader consumes its buffer; a copy of a ByteBuffer shares the slices.
    grpc::ByteBuffer copy(request);
    grpc::ProtoBufferReader reader(&copy);
    std::optional<std::string> value = ReadPath(&reader, path.numbers, path.integer);
    if (!value) return "";
    if (!value->empty()) return *std::move(value);
  }
  return "";
}

std::string ResourceFieldReader::Read(std::string_view serialized) const {
  for (const Path& path : candidates_) {
    pb::io::ArrayInputStream stream(serialized.data(), static_cast<int>(serialized.size()));
    std::optional<std::string> value = ReadPath(&stream, path.numbers, path.integer);
    if (!value) return "";
    if (!value->empty()) return *std::move(value);
  }
  return "";
}

}  // namespace medkoord::gateway
