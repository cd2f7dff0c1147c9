// Fuzzes the streaming RFC 4180 reader (common/csv/reader.h) with two
// oracles besides the sanitizers:
//  - chunk invariance: any split of the input gives the same records, row
//    errors and fatal error as the whole input in one chunk;
//  - round trip: every well-formed record written back with AppendField
//    reads back as the same fields.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/csv/reader.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using medkoord::csv::Reader;
using medkoord::csv::ReaderOptions;
using medkoord::csv::Record;

struct Outcome {
  std::vector<Record> records;
  bool failed = false;
  int64_t fatal_line = 0;
  std::string fatal_message;
};

Outcome ReadAll(const std::vector<std::string_view>& chunks, ReaderOptions options) {
  Reader reader(options);
  Outcome out;
  Record r;
  for (std::string_view c : chunks) {
    reader.Feed(c);
    while (reader.Next(r)) out.records.push_back(r);
  }
  reader.Finish();
  while (reader.Next(r)) out.records.push_back(r);
  out.failed = reader.failed();
  if (out.failed) {
    out.fatal_line = reader.error().line;
    out.fatal_message = reader.error().message;
  }
  return out;
}

bool SameRecord(const Record& a, const Record& b) {
  return a.line == b.line && a.fields == b.fields && a.error == b.error && a.error_field == b.error_field;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using medkoord::fuzz::Chunks;
  auto input = medkoord::fuzz::SplitControlByte(data, size);
  ReaderOptions options;
  // Small limits sometimes, so the over-long-record path is reached.
  if (size > 0 && (data[0] & 0x80)) options.max_record_bytes = 1 + data[0] % 97;

  Outcome whole = ReadAll({input.body}, options);
  Outcome split = ReadAll(Chunks(input.body, input.chunk_size == 0 ? 1 : input.chunk_size), options);
  FUZZ_CHECK(whole.failed == split.failed);
  FUZZ_CHECK(whole.fatal_line == split.fatal_line);
  FUZZ_CHECK(whole.fatal_message == split.fatal_message);
  FUZZ_CHECK(whole.records.size() == split.records.size());
  for (size_t i = 0; i < whole.records.size(); ++i) FUZZ_CHECK(SameRecord(whole.records[i], split.records[i]));

  int64_t last_line = 0;
  for (const Record& rec : whole.records) {
    FUZZ_CHECK(rec.line > last_line);  // records come in file order
    last_line = rec.line;
    FUZZ_CHECK(rec.error_field >= -1 && rec.error_field < static_cast<int>(rec.fields.size()) + 1);
    if (!rec.error.empty()) continue;
    for (const std::string& f : rec.fields) FUZZ_CHECK(medkoord::csv::IsValidUtf8(f));
    // A lone empty unquoted field is a blank line, which the reader skips.
    if (rec.fields.size() == 1 && rec.fields[0].empty()) continue;
    // A header line first, so a field starting with the BOM bytes is not
    // taken for a byte-order mark when read back.
    std::string text = "h\n";
    for (size_t i = 0; i < rec.fields.size(); ++i) {
      if (i > 0) text.push_back(',');
      medkoord::csv::AppendField(text, rec.fields[i]);
    }
    text.push_back('\n');
    ReaderOptions roomy;
    roomy.max_record_bytes = text.size() + 16;
    Outcome back = ReadAll({text}, roomy);
    FUZZ_CHECK(!back.failed);
    FUZZ_CHECK(back.records.size() == 2);
    FUZZ_CHECK(back.records[1].error.empty());
    FUZZ_CHECK(back.records[1].fields == rec.fields);
  }
  return 0;
}
