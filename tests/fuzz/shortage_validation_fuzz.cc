// Fuzzes the shortage API's request validation (services/shortage/
// validation.h) with requests decoded from the fuzz input as protobuf wire
// format, as a client could send them. Besides the sanitizers: a request is
// either accepted or rejected as INVALID_ARGUMENT with at least one field
// violation naming a field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "common/status.h"
#include "services/shortage/validation.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

template <typename Request, typename Validate>
void Check(const uint8_t* data, size_t size, Validate validate) {
  Request request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  absl::Status s = validate(request);
  if (s.ok()) return;
  if (s.code() != absl::StatusCode::kInvalidArgument) return;  // e.g. a resource name, checked elsewhere
  auto violations = medkoord::FieldViolationsOf(s);
  FUZZ_CHECK(!violations.empty());
  for (const auto& [field, description] : violations) FUZZ_CHECK(!field.empty() && !description.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  namespace s = medkoord::shortage;
  namespace v1 = medkoord::shortage::v1;
  const absl::Time now = absl::FromUnixSeconds(1782777600);  // 2026-06-30, fixed: results must not depend on the clock
  const uint8_t which = data[0] % 12;
  ++data;
  --size;
  switch (which) {
    case 0: Check<v1::AnnounceShortageRequest>(data, size, [](auto& r) { return s::ValidateAnnounce(r); }); break;
    case 1: Check<v1::UpdateShortageRequest>(data, size, [](auto& r) { return s::ValidateUpdateShortage(r); }); break;
    case 2: Check<v1::ReportPositionRequest>(data, size, [&](auto& r) { return s::ValidateReportPosition(r, now); }); break;
    case 3: Check<v1::ProposeAllocationRequest>(data, size, [](auto& r) { return s::ValidateProposeAllocation(r); }); break;
    case 4: Check<v1::ApproveAllocationRequest>(data, size, [](auto& r) { return s::ValidateAmendment(r, 1000); }); break;
    case 5: Check<v1::PublishGuidanceRequest>(data, size, [](auto& r) { return s::ValidatePublishGuidance(r); }); break;
    case 6: Check<v1::CreateMeetingRequest>(data, size, [](auto& r) { return s::ValidateCreateMeeting(r); }); break;
    case 7: Check<v1::CreateActionRequest>(data, size, [](auto& r) { return s::ValidateCreateAction(r); }); break;
    case 8: Check<v1::UpdateActionRequest>(data, size, [](auto& r) { return s::ValidateUpdateAction(r); }); break;
    case 9: Check<v1::ListShortagesRequest>(data, size, [](auto& r) { return s::ValidateListShortages(r); }); break;
    case 10: Check<v1::WatchShortagesRequest>(data, size, [](auto& r) { return s::ValidateWatch(r); }); break;
    default: {
      // std::string converts to whichever string_view the helpers take.
      const std::string text(reinterpret_cast<const char*>(data), size);
      (void)s::ParseShortageName(text, "name");
      (void)s::ParseChildName(text, "positions", "name");
      (void)s::IsValidShortageId(text);
      break;
    }
  }
  return 0;
}
