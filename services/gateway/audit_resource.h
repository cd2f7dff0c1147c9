#pragma once
// The resource a request names, for the audit log, read straight from the
// request's wire bytes: only the one field is decoded (CodedInputStream,
// skipping everything else), so a large request costs a scan, not a parse
// into a message with every field allocated.

#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/byte_buffer.h>

namespace medkoord::gateway {

// Where the resource field sits in a request type, resolved once per method.
class ResourceFieldReader {
 public:
  ResourceFieldReader() = default;
  // `field_path`: dotted path of a string or integer field ("shortage.name",
  // "year"); empty: `name`, else `parent`, whichever the type has and the
  // request sets. A path that does not resolve reads as "".
  ResourceFieldReader(const google::protobuf::Descriptor* input, std::string_view field_path);

  // The field's value in the serialized request (the last occurrence, as a
  // parser would keep it), or "" when absent or the bytes do not parse.
  std::string Read(const grpc::ByteBuffer& request) const;
  std::string Read(std::string_view serialized) const;

 private:
  struct Path {
    std::vector<int> numbers;  // field numbers from the top message down
    bool integer = false;      // leaf is a varint integer, else a string
  };
  std::vector<Path> candidates_;  // tried in order, the first non-empty wins
};

}  // namespace medkoord::gateway
