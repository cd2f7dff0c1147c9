#pragma once
// The individual application (enkeltansøgning) as plain data, and the rules
// that decide whether one is acceptable. Shared by SubmitApplication and the
// CSV import, so that a case accepted by one is accepted by the other: both
// hand in the fields as text (the export format's spelling) and get back
// either a record or every violation, named by the export column (which is
// also the proto field name).
//
// Pure code: no gRPC, no SQL, no clock (today is passed in).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "common/csv/validators.h"

namespace medkoord::intake {

// Export-format values (DOMAIN.md section 1, fixtures/README.md).
inline constexpr std::string_view kRegions[] = {"hovedstaden", "midtjylland", "syddanmark", "sjaelland",
                                                "nordjylland"};
inline constexpr std::string_view kMedicinraadetStatuses[] = {"not_assessed", "under_assessment", "rejected",
                                                              "recommended_outside_criteria"};
inline constexpr std::string_view kEmaStatuses[] = {"on_label", "off_label", "unknown"};
inline constexpr std::string_view kOutcomes[] = {"recommended", "not_recommended", "not_concluded"};

// Lifecycle states as stored.
inline constexpr char kStateOpen[] = "open";
inline constexpr char kStateDecided[] = "decided";
inline constexpr char kStateWithdrawn[] = "withdrawn";
inline constexpr char kSourceSubmitted[] = "submitted";
inline constexpr char kSourceImported[] = "imported";

// Text limits (characters, not bytes).
inline constexpr size_t kMaxCaseRef = 64;
inline constexpr size_t kMaxRegionRef = 64;
inline constexpr size_t kMaxDrugName = 200;
inline constexpr size_t kMaxIndication = 300;
inline constexpr size_t kMaxNote = 4000;
inline constexpr size_t kMaxReason = 1000;

struct ApplicationRecord {
  std::string case_ref;
  std::string region_ref;  // "" when not given
  std::string region;      // slug
  csv::Date submitted_on;
  std::string drug_name;
  std::string atc_code;
  std::string indication;
  std::string icd10;  // "" when not known
  bool cancer = false;
  bool marketed_dk = false;
  std::string medicinraadet_status;
  std::string ema_status;
  std::string outcome;                   // "" while open
  std::optional<csv::Date> decided_on;   // unset while open (and possibly for not_concluded)
  std::string note;

  // Kept by intake.
  std::string state = kStateOpen;
  std::string source = kSourceSubmitted;
  std::string created_by;
  absl::Time created_at;
  std::string withdrawn_by;
  std::optional<absl::Time> withdrawn_at;
  std::string withdraw_reason;
  std::string decided_by;
  std::optional<absl::Time> decided_at;
  std::string decision_reason;
  absl::Time updated_at;
};

// The fields as text in the export format's spelling; "" = not given.
struct RawApplication {
  std::string case_ref;
  std::string region_ref;
  std::string region;
  std::string submitted_on;
  std::string drug_name;
  std::string atc_code;
  std::string indication;
  std::string icd10;
  std::string cancer;       // yes / no
  std::string marketed_dk;  // yes / no
  std::string medicinraadet_status;
  std::string ema_status;
  std::string outcome;
  std::string decided_on;
  std::string note;
};

struct Violation {
  std::string field;  // export column / proto field name, e.g. "atc_code"
  std::string reason;
};

enum class ParseMode {
  kSubmission,  // case_ref, outcome and decided_on are intake's, not the caller's
  kImport,      // case_ref required; outcome and decided_on taken from the row
};

// Checks every field and returns the record, or every violation at once.
// `today` is the Danish calendar day: dates after it are in the future.
struct ParsedApplication {
  ApplicationRecord record;
  std::vector<Violation> violations;
};
ParsedApplication ParseApplication(const RawApplication& raw, ParseMode mode, const csv::Date& today);

// The export-format text of a record (the inverse of ParseApplication). A
// withdrawn application shows as `not_concluded`.
RawApplication ToRaw(const ApplicationRecord& record);

bool IsValidCaseRef(std::string_view case_ref);
size_t Utf8Length(std::string_view text);

// "regions/{region}/applications/{case_ref}" <-> parts.
std::string ApplicationName(std::string_view region, std::string_view case_ref);
struct ApplicationNameParts {
  std::string region;
  std::string case_ref;
};
std::optional<ApplicationNameParts> ParseApplicationName(std::string_view name);

// The Forum export format (fixtures/README.md): columns, header parsing and
// row formatting.
class ForumCsvFormat {
 public:
  static const std::vector<std::string>& Columns(bool with_region_ref);

  // Maps a header row to column positions. Column order is free; every
  // required column must be there, region_ref is optional, nothing else is
  // allowed. On error, says what is wrong with the header.
  static std::optional<ForumCsvFormat> FromHeader(const std::vector<std::string>& header, std::string* error);

  size_t column_count() const { return names_.size(); }
  const std::string& column_name(size_t i) const { return names_[i]; }
  // The row's fields by column; the caller has checked the field count.
  RawApplication ToRaw(const std::vector<std::string>& fields) const;

  // Appends one CSV line for a record, ended by CRLF as RFC 4180 and the
  // Forum's own files have it.
  static void AppendRow(std::string& out, const ApplicationRecord& record, bool with_region_ref);
  static void AppendHeader(std::string& out, bool with_region_ref);

 private:
  std::vector<std::string> names_;  // header names by position
};

}  // namespace medkoord::intake
