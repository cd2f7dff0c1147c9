#pragma once
// Investigator-initiated protocols (DOMAIN.md section 1): a clinical
// department presents a protocol for using a medicine in a defined group; the
// Forum discusses it and follows it up with the applicants. Counted apart
// from individual applications. Pure data and rules.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "common/csv/validators.h"
#include "services/intake/application.h"

namespace medkoord::intake {

inline constexpr std::string_view kProtocolStates[] = {"presented", "under_follow_up", "closed"};
inline constexpr size_t kMaxProtocolTitle = 300;
inline constexpr size_t kMaxDepartment = 200;

struct ProtocolNoteRecord {
  std::string text;
  csv::Date noted_on;
  std::string state;  // the state the note moved the protocol to, "" = unchanged
  std::string created_by;
  absl::Time created_at;
};

struct ProtocolRecord {
  std::string id;  // "P-2024-0001"
  std::string title;
  std::string region;
  std::string department;
  std::string drug_name;
  std::string atc_code;  // substance code or group prefix
  std::string indication;
  std::string icd10;     // code or prefix, may be empty
  csv::Date presented_on;
  std::string state = "presented";
  std::vector<ProtocolNoteRecord> notes;
  std::string created_by;
  absl::Time created_at;
  absl::Time updated_at;
};

// Checks the caller's fields of a new protocol; `presented_on` is given as
// text (YYYY-MM-DD, "" = missing). Violations are named by proto field.
std::vector<Violation> CheckProtocol(const ProtocolRecord& protocol, std::string_view presented_on,
                                     const csv::Date& today, csv::Date* parsed_presented_on);
// Checks a follow-up note; `state` may be "" (unchanged).
std::vector<Violation> CheckProtocolNote(std::string_view text, std::string_view state);

std::string ProtocolName(std::string_view id);
std::optional<std::string> ProtocolIdFromName(std::string_view name);

}  // namespace medkoord::intake
