#pragma once
// Turns the bytes of a Forum export file (fixtures/README.md), fed in chunks,
// into validated application records and row errors (line, column, reason).
// Pure code over common/csv: what needs the database (a case_ref repeated
// further down the file, a case already stored) is the store's part.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/csv/reader.h"
#include "services/intake/application.h"

namespace medkoord::intake {

struct ImportRowError {
  int64_t line = 0;
  std::string column;  // "" = the row as a whole
  std::string reason;
  std::string case_ref;
};

struct ImportedRow {
  int64_t line = 0;
  ApplicationRecord record;
};

class ApplicationCsvParser {
 public:
  // `today`: the Danish calendar day, for "not in the future".
  explicit ApplicationCsvParser(const csv::Date& today, size_t max_record_bytes = 64 * 1024);

  void Feed(std::string_view chunk);
  void Finish();

  // Rows and errors completed so far; the caller takes them (and clears).
  std::vector<ImportedRow>& rows() { return rows_; }
  std::vector<ImportRowError>& errors() { return errors_; }

  // A problem that makes the rest of the file unreadable: "line 1: ...".
  std::optional<std::string> fatal() const { return fatal_; }
  int64_t rows_read() const { return rows_read_; }
  int64_t rows_rejected() const { return rows_rejected_; }
  bool has_region_ref_column() const;

 private:
  void Drain();
  void Take(csv::Record& record);

  csv::Date today_;
  csv::Reader reader_;
  std::optional<ForumCsvFormat> format_;
  std::optional<std::string> fatal_;
  std::vector<ImportedRow> rows_;
  std::vector<ImportRowError> errors_;
  int64_t rows_read_ = 0;
  int64_t rows_rejected_ = 0;
};

}  // namespace medkoord::intake
