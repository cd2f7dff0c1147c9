#pragma once
// Request validation and resource names of the shortage API. Every check
// collects all offending fields (FieldViolations) with their paths, so a
// client learns everything that is wrong at once; nothing here touches the
// database, so a rejected request stores nothing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "medkoord/shortage/v1/shortage.pb.h"

namespace medkoord::shortage {

// "shortages/{id}" -> id. INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> ParseShortageName(std::string_view name, std::string_view field);
std::string ShortageName(std::string_view shortage_id);

// "shortages/{id}/{collection}/{child}" -> {id, child}.
struct ChildName {
  std::string shortage_id;
  std::string child_id;
};
absl::StatusOr<ChildName> ParseChildName(std::string_view name, std::string_view collection,
                                         std::string_view field);
std::string ChildResourceName(std::string_view shortage_id, std::string_view collection, std::string_view child);
// A numeric child id ("42") -> 42.
absl::StatusOr<int64_t> ParseNumericId(std::string_view child_id, std::string_view field);

// A client-chosen shortage id: [a-z][a-z0-9-]{2,62}.
bool IsValidShortageId(std::string_view id);

absl::Status ValidateAnnounce(const v1::AnnounceShortageRequest& request);
absl::Status ValidateUpdateShortage(const v1::UpdateShortageRequest& request);
// `now` bounds as_of: a position cannot be reported for the future.
absl::Status ValidateReportPosition(const v1::ReportPositionRequest& request, absl::Time now);
absl::Status ValidateProposeAllocation(const v1::ProposeAllocationRequest& request);
// Amended lines: every known region exactly once, whole packs >= 0, summing
// to `quantity_packs`; an amendment needs a reason.
absl::Status ValidateAmendment(const v1::ApproveAllocationRequest& request, int64_t quantity_packs);
absl::Status ValidatePublishGuidance(const v1::PublishGuidanceRequest& request);
absl::Status ValidateCreateMeeting(const v1::CreateMeetingRequest& request);
absl::Status ValidateCreateAction(const v1::CreateActionRequest& request);
absl::Status ValidateUpdateAction(const v1::UpdateActionRequest& request);
absl::Status ValidateListShortages(const v1::ListShortagesRequest& request);
absl::Status ValidateWatch(const v1::WatchShortagesRequest& request);

// A google.type.Date that is a real calendar day.
bool IsValidDate(const google::type::Date& date);
// Days since 1970-01-01, for ordering dates.
int64_t DateOrdinal(const google::type::Date& date);

}  // namespace medkoord::shortage
