#include "tests/integration/shortage/shortage_test_env.h"

#include "common/status.h"

namespace medkoord::shortage::testing {

std::vector<std::string> ViolatedFields(const grpc::Status& status) {
  std::vector<std::string> out;
  for (const auto& [field, description] : FieldViolationsOf(FromGrpcStatus(status))) out.push_back(field);
  return out;
}

bool ReadEvents(grpc::ClientReader<v1::WatchShortagesResponse>& reader, size_t count,
                std::vector<v1::ShortageEvent>* events, std::optional<int64_t>* caught_up) {
  v1::WatchShortagesResponse response;
  while (events->size() < count) {
    if (!reader.Read(&response)) return false;
    if (response.has_caught_up()) {
      if (caught_up != nullptr) *caught_up = response.caught_up().head_sequence();
      continue;
    }
    events->push_back(response.event());
  }
  return true;
}

}  // namespace medkoord::shortage::testing
