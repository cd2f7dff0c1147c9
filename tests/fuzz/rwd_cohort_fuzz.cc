// Fuzzes the RWD cohort upload (services/rwd/cohort.h): header parsing, row
// validation with CPR pseudonymisation, duplicate detection and the
// data-quality report. Besides the sanitizers: every row read is accepted or
// rejected, no accepted row carries a CPR number in clear, chunking does not
// change the result, and every error text is valid UTF-8 (they travel in
// proto3 strings, which a client cannot parse otherwise).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "common/csv/reader.h"
#include "common/status.h"
#include "services/rwd/cohort.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

bool Utf8(std::string_view s) { return medkoord::csv::IsValidUtf8(s); }

void CheckStatusText(const absl::Status& s) {
  FUZZ_CHECK(Utf8(std::string(s.message())));
  for (const auto& [field, description] : medkoord::FieldViolationsOf(s)) {
    FUZZ_CHECK(Utf8(field));
    FUZZ_CHECK(Utf8(description));
  }
}

struct Result {
  bool ok = true;
  std::string error;
  std::vector<std::string> rows;  // line|patient_key|arm
  int64_t read = 0, accepted = 0, rejected = 0;
  std::string report;
};

Result Upload(const medkoord::rwd::Pseudonymiser& pseudonymiser, const std::vector<std::string_view>& chunks) {
  medkoord::rwd::UploadLimits limits;
  limits.batch_rows = 7;  // small batches exercise the hand-over
  limits.max_listed_errors = 50;
  limits.max_listed_warnings = 50;
  medkoord::rwd::CohortUpload upload(pseudonymiser, absl::CivilDay(2026, 6, 30), limits);
  std::vector<medkoord::rwd::CohortRow> batch;
  Result out;
  // Hands the batch over and records a failure; false when the upload stopped.
  auto settle = [&](const absl::Status& s) {
    for (const auto& row : batch) {
      out.rows.push_back(std::to_string(row.line) + "|" + row.patient_key + "|" + row.arm);
    }
    batch.clear();
    CheckStatusText(s);
    if (s.ok()) return true;
    out.ok = false;
    out.error = std::string(s.message());
    return false;
  };
  for (std::string_view c : chunks) {
    if (!settle(upload.Feed(c, batch))) return out;
  }
  if (!settle(upload.Finish(batch))) return out;
  out.read = upload.rows_read();
  out.accepted = upload.rows_accepted();
  out.rejected = upload.rows_rejected();
  for (const auto* list : {&upload.errors(), &upload.warnings()}) {
    for (const medkoord::rwd::RowIssue& issue : *list) {
      FUZZ_CHECK(Utf8(issue.field));
      FUZZ_CHECK(Utf8(issue.reason));
    }
  }
  // Strict: the report goes out as JSON text and must not need repairs.
  out.report = upload.Report("fuzz").dump();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto* pseudonymiser = new medkoord::rwd::Pseudonymiser(
      *medkoord::rwd::Pseudonymiser::Create("fuzzing-key-0123456789abcdef-0123456789"));
  auto input = medkoord::fuzz::SplitControlByte(data, size);
  Result whole = Upload(*pseudonymiser, {input.body});
  Result split = Upload(*pseudonymiser, medkoord::fuzz::Chunks(input.body, input.chunk_size == 0 ? 1 : input.chunk_size));
  FUZZ_CHECK(whole.ok == split.ok);
  FUZZ_CHECK(whole.error == split.error);
  FUZZ_CHECK(whole.rows == split.rows);
  FUZZ_CHECK(whole.report == split.report);
  if (!whole.ok) return 0;
  FUZZ_CHECK(whole.read == whole.accepted + whole.rejected);
  FUZZ_CHECK(static_cast<int64_t>(whole.rows.size()) == whole.accepted);
  for (const std::string& row : whole.rows) {
    const std::string key = row.substr(row.find('|') + 1);
    // Keys are "cpr:<64 hex>" or "ref:<as given>"; a CPR number never stays in clear.
    FUZZ_CHECK(key.rfind("cpr:", 0) == 0 || key.rfind("ref:", 0) == 0);
    if (key.rfind("cpr:", 0) == 0) FUZZ_CHECK(key.find('|') == 68);
  }
  return 0;
}
