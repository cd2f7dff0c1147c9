// Fuzzes the Forum case import (services/intake/import_parser.h): the CSV
// reader plus ParseApplication, the validation that SubmitApplication uses
// too. Besides the sanitizers: every row read is either accepted or rejected
// with at least one error naming its line, chunking does not change the
// result, and error texts are valid UTF-8 (they travel in proto3 strings).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/csv/reader.h"
#include "services/intake/import_parser.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

struct Result {
  std::vector<int64_t> accepted_lines;
  std::vector<std::string> errors;  // "line|column|reason"
  std::string fatal;
  int64_t read = 0, rejected = 0;
};

Result Parse(const std::vector<std::string_view>& chunks) {
  medkoord::intake::ApplicationCsvParser parser(medkoord::csv::Date{2026, 6, 30}, 4096);
  Result out;
  auto take = [&] {
    for (auto& row : parser.rows()) out.accepted_lines.push_back(row.line);
    for (auto& e : parser.errors()) {
      FUZZ_CHECK(medkoord::csv::IsValidUtf8(e.column));
      FUZZ_CHECK(medkoord::csv::IsValidUtf8(e.reason));
      FUZZ_CHECK(medkoord::csv::IsValidUtf8(e.case_ref));
      out.errors.push_back(std::to_string(e.line) + "|" + e.column + "|" + e.reason);
    }
    parser.rows().clear();
    parser.errors().clear();
  };
  for (std::string_view c : chunks) {
    parser.Feed(c);
    take();
  }
  parser.Finish();
  take();
  out.fatal = parser.fatal().value_or("");
  FUZZ_CHECK(medkoord::csv::IsValidUtf8(out.fatal));
  out.read = parser.rows_read();
  out.rejected = parser.rows_rejected();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto input = medkoord::fuzz::SplitControlByte(data, size);
  Result whole = Parse({input.body});
  Result split = Parse(medkoord::fuzz::Chunks(input.body, input.chunk_size == 0 ? 1 : input.chunk_size));
  FUZZ_CHECK(whole.accepted_lines == split.accepted_lines);
  FUZZ_CHECK(whole.errors == split.errors);
  FUZZ_CHECK(whole.fatal == split.fatal);
  FUZZ_CHECK(whole.read == split.read && whole.rejected == split.rejected);
  if (whole.fatal.empty()) {
    FUZZ_CHECK(whole.read == static_cast<int64_t>(whole.accepted_lines.size()) + whole.rejected);
    FUZZ_CHECK(whole.rejected == 0 || !whole.errors.empty());
  }
  return 0;
}
