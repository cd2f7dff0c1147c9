// Fuzzes the field validators (common/csv/validators.h): no crash on any
// bytes, and the validators agree with each other (a parsed date formats
// back to the same text, a substance code is a level-5 ATC code, an ICD-10
// code is also a valid prefix).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/csv/validators.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace csv = medkoord::csv;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto date = csv::ParseIsoDate(text)) {
    FUZZ_CHECK(csv::IsValidDate(date->year, date->month, date->day));
    FUZZ_CHECK(csv::FormatIsoDate(*date) == text);
  }
  const int level = csv::AtcLevel(text);
  FUZZ_CHECK(level >= 0 && level <= 5);
  FUZZ_CHECK(csv::IsAtcSubstanceCode(text) == (level == 5));
  FUZZ_CHECK(csv::AtcProblem(text, /*allow_group=*/false).empty() == (level == 5));
  FUZZ_CHECK(csv::AtcProblem(text, /*allow_group=*/true).empty() == (level >= 1));
  if (csv::IsIcd10Code(text)) FUZZ_CHECK(csv::IsIcd10Prefix(text));
  if (auto yes = csv::ParseYesNo(text)) FUZZ_CHECK(text == (*yes ? "yes" : "no"));

  // Dates from the first bytes as numbers, so IsValidDate sees every range.
  if (size >= 6) {
    const int year = (data[0] << 8 | data[1]) % 12000 - 1000;
    const int month = static_cast<int8_t>(data[2]);
    const int day = static_cast<int8_t>(data[3]);
    if (csv::IsValidDate(year, month, day)) {
      csv::Date d{year, month, day};
      auto back = csv::ParseIsoDate(csv::FormatIsoDate(d));
      FUZZ_CHECK(back.has_value() && *back == d);
    }
  }
  return 0;
}
