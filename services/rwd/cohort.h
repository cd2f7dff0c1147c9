#pragma once
// The RWD cohort format (fixtures/README.md, "The RWD cohort format"): one
// patient per row, validated row by row while the upload streams in, with
// patient identifiers pseudonymised before a row leaves this file. Pure code:
// no gRPC, no SQL, no I/O.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/numeric/int128.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "common/csv/reader.h"
#include "nlohmann/json.hpp"
#include "services/rwd/cohort_row.h"
#include "services/rwd/data_quality.h"

namespace medkoord::rwd {

// ---------------------------------------------------------------- identifiers

// True for a Danish CPR number: `DDMMYY-NNNN` or 10 digits, whose first six
// digits are a real date. The century follows from the 7th digit (the CPR
// office's rules), so 29 February is checked against the right year. The
// modulus-11 check is not applied: numbers issued since 2007 need not pass it.
bool IsValidCpr(std::string_view value);

// What a `patient_ref` value is.
struct PatientRef {
  bool is_cpr = false;
  // The 10 CPR digits (dash removed) or the pseudonym as given.
  std::string value;
};

// A value of only digits and dashes must be a valid CPR number (else
// INVALID_ARGUMENT with a reason that does not repeat the value); anything
// else is a pseudonym, taken as given. Empty is INVALID_ARGUMENT.
absl::StatusOr<PatientRef> ClassifyPatientRef(std::string_view value);

// Keyed pseudonyms: HMAC-SHA256 of the 10 CPR digits under a secret key, so
// that both notations of one person give one pseudonym and nobody without the
// key can recompute it from a CPR number. Pseudonyms from the source are kept
// as given (prefixed so they can never equal a hashed CPR).
class Pseudonymiser {
 public:
  // The key must be at least 32 bytes.
  static absl::StatusOr<Pseudonymiser> Create(std::string key);

  // "cpr:<64 hex>" for a CPR number, "ref:<value>" for a source pseudonym.
  std::string PatientKey(const PatientRef& ref) const;

 private:
  explicit Pseudonymiser(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

// ---------------------------------------------------------------- the format

inline constexpr char kPatientRef[] = "patient_ref";
inline constexpr char kArm[] = "arm";
inline constexpr char kIndexDate[] = "index_date";
inline constexpr char kDeathDate[] = "death_date";
inline constexpr char kProgressionDate[] = "progression_date";
inline constexpr char kLastContactDate[] = "last_contact_date";
inline constexpr char kSource[] = "source";

// Where each column of an uploaded file is. Every column that is not one of
// the fixed ones is a covariate, in file order.
struct CohortLayout {
  int columns = 0;
  int patient_ref = -1, arm = -1, index_date = -1, death_date = -1, progression_date = -1,
      last_contact_date = -1, source = -1;
  std::vector<std::string> covariate_names;
  std::vector<int> covariate_columns;
  std::vector<std::string> header;
};

// INVALID_ARGUMENT naming every problem of the header (`header.arm`: missing,
// duplicate or empty column names).
absl::StatusOr<CohortLayout> ParseHeader(const std::vector<std::string>& header);

// Validates one record. Returns the row, or no row and the errors (every bad
// field of the row). `warnings` receives remarks on accepted values.
// `data_cut` (optional) flags dates after it as implausible.
std::optional<CohortRow> ValidateRecord(const CohortLayout& layout, const csv::Record& record,
                                        const Pseudonymiser& pseudonymiser,
                                        std::optional<absl::CivilDay> data_cut,
                                        std::vector<RowIssue>& errors,
                                        std::vector<RowIssue>& warnings);

// ------------------------------------------------------------ the streaming upload

struct UploadLimits {
  size_t max_listed_errors = 100000;
  size_t max_listed_warnings = 100000;
  size_t batch_rows = 5000;  // accepted rows handed out per batch
};

// Reads an upload chunk by chunk with memory bounded by one batch plus one
// 16-byte entry per accepted patient (to find the same patient twice).
class CohortUpload {
 public:
  CohortUpload(const Pseudonymiser& pseudonymiser, std::optional<absl::CivilDay> data_cut,
               UploadLimits limits = {});

  // Feeds bytes. Accepted rows are appended to `batch`; the caller stores
  // and clears it whenever it likes. A broken header or an unreadable file
  // (open quote, over-long record) is INVALID_ARGUMENT.
  absl::Status Feed(std::string_view chunk, std::vector<CohortRow>& batch);
  // End of input; may append the last rows.
  absl::Status Finish(std::vector<CohortRow>& batch);

  // Available once the header is read.
  const CohortLayout& layout() const { return layout_; }
  bool has_header() const { return has_header_; }

  int64_t rows_read() const { return rows_read_; }
  int64_t rows_accepted() const { return rows_accepted_; }
  int64_t rows_rejected() const { return rows_rejected_; }
  // Errors and warnings in line order, capped at the limits.
  const std::vector<RowIssue>& errors() const { return errors_; }
  const std::vector<RowIssue>& warnings() const { return warnings_; }
  bool errors_truncated() const { return errors_truncated_; }
  bool warnings_truncated() const { return warnings_truncated_; }
  // SHA-256 of every byte fed, hex; after Finish().
  std::string Sha256Hex() const;
  // Arm -> accepted patients.
  const std::map<std::string, int64_t>& arms() const { return arms_; }

  // Numeric or categorical per covariate, decided on the whole file.
  std::vector<std::pair<std::string, VariableKind>> Variables() const;

  // The data-quality report (DataQualityReport in the rwd.v1 proto's JSON
  // form), available after Finish(). Also adds the "not a number" warnings
  // of numeric columns.
  nlohmann::json Report(const std::string& cohort_name);

 private:
  absl::Status Drain(std::vector<CohortRow>& batch);
  void AddIssue(std::vector<RowIssue>& list, bool& truncated, size_t cap, RowIssue issue);

  Pseudonymiser pseudonymiser_;
  std::optional<absl::CivilDay> data_cut_;
  UploadLimits limits_;
  csv::Reader reader_;
  std::shared_ptr<EVP_MD_CTX> sha_;
  bool has_header_ = false;
  CohortLayout layout_;
  // First 16 bytes of the patient key's hash -> line of the accepted row.
  absl::flat_hash_map<absl::uint128, int64_t> seen_;
  int64_t rows_read_ = 0, rows_accepted_ = 0, rows_rejected_ = 0;
  std::vector<RowIssue> errors_, warnings_;
  bool errors_truncated_ = false, warnings_truncated_ = false;
  std::map<std::string, int64_t> arms_;
  DataQuality quality_;
};

}  // namespace medkoord::rwd
