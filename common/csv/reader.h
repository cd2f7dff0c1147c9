#pragma once
// A streaming RFC 4180 reader for imports of outside files (Forum cases, RWD
// cohorts). Input arrives in chunks of any size (a gRPC client stream), so the
// reader is a byte-level state machine that never needs the whole file: memory
// is bounded by the largest record plus the records completed by one chunk.
//
// Pure C++17/20 without <ranges>, Abseil, gRPC or libpqxx, so the fuzz targets
// build it with clang-14.
//
// What it accepts: comma separated fields; fields optionally enclosed in
// double quotes; a doubled quote inside a quoted field is one quote; quoted
// fields may hold commas, CR and LF; records end at LF, CRLF or a lone CR; a
// UTF-8 byte-order mark at the start is skipped; a final record without a
// line break is read; blank lines are skipped.
//
// Two kinds of problems:
//  - row errors leave the record boundaries intact, so reading goes on: the
//    record carries `error` (invalid UTF-8, a quote inside an unquoted field,
//    text after a closing quote), naming the field;
//  - fatal errors make the rest of the input unreadable (a record longer than
//    `max_record_bytes`, a quoted field still open at the end of input): the
//    reader stops and `error()` says where.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace medkoord::csv {

struct ReaderOptions {
  // The longest record accepted, in bytes (line breaks inside quotes count).
  size_t max_record_bytes = 64 * 1024;
  // Field separator.
  char separator = ',';
};

struct Record {
  int64_t line = 0;                 // file line (1-based) where the record starts
  std::vector<std::string> fields;  // unquoted field values
  // A row error; empty when the record is well formed.
  std::string error;
  int error_field = -1;             // 0-based field index the error is in, -1 for the row
};

struct FatalError {
  int64_t line = 0;     // file line where the unreadable record starts
  std::string message;  // e.g. "record longer than 65536 bytes"
};

class Reader {
 public:
  explicit Reader(ReaderOptions options = {});

  // Feeds the next bytes. Records completed by them become available through
  // Next(). Ignored after a fatal error or Finish().
  void Feed(std::string_view chunk);
  // End of input: completes the last record (or reports an open quote).
  void Finish();

  // Pops the next complete record; false when none is ready yet.
  bool Next(Record& out);

  bool failed() const { return failed_; }
  const FatalError& error() const { return fatal_; }
  // Bytes consumed so far (after the BOM check), for progress and limits.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  enum class State { kFieldStart, kUnquoted, kQuoted, kQuoteInQuoted, kAfterCr };

  void Consume(std::string_view bytes);
  // Outside quotes: a separator or line break ends the field (and the
  // record); true if `c` was one.
  bool EndsField(char c);
  void EndField();
  void EndRecord();
  void SetRowError(std::string message);
  void Fail(std::string message);

  ReaderOptions options_;
  State state_ = State::kFieldStart;
  bool bom_checked_ = false;
  std::string bom_buffer_;  // up to 3 leading bytes while deciding about a BOM
  bool finished_ = false;
  bool failed_ = false;
  FatalError fatal_;
  uint64_t bytes_read_ = 0;

  int64_t line_ = 1;            // current file line
  Record current_;              // the record being read
  std::string field_;           // the field being read
  size_t record_bytes_ = 0;
  bool field_quoted_ = false;       // the field being read began with a quote
  bool last_field_quoted_ = false;  // the last completed field was quoted
  std::deque<Record> ready_;
};

// Appends `value` to `out` as one CSV field, quoted only when it must be
// (separator, quote, CR or LF inside, or leading/trailing space).
void AppendField(std::string& out, std::string_view value, char separator = ',');

// True if `bytes` is well-formed UTF-8 (no overlongs, surrogates or code
// points above U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

}  // namespace medkoord::csv
