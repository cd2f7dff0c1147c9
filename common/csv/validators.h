#pragma once
// Field validators for the Forum's case format and other imports. Pure
// functions on strings, shared by import parsing and API validation so that a
// value accepted in one place is accepted in the other.

#include <optional>
#include <string>
#include <string_view>

namespace medkoord::csv {

struct Date {
  int year = 0;
  int month = 0;
  int day = 0;
  friend bool operator==(const Date& a, const Date& b) {
    return a.year == b.year && a.month == b.month && a.day == b.day;
  }
  friend bool operator<(const Date& a, const Date& b) {
    if (a.year != b.year) return a.year < b.year;
    if (a.month != b.month) return a.month < b.month;
    return a.day < b.day;
  }
};

// A real calendar date (proleptic Gregorian), years 1..9999.
bool IsValidDate(int year, int month, int day);
// Strict ISO 8601 calendar date "YYYY-MM-DD"; nullopt for anything else,
// including impossible dates such as 2024-13-01 or 2023-02-29.
std::optional<Date> ParseIsoDate(std::string_view text);
std::string FormatIsoDate(const Date& date);

// WHO ATC codes: level 1 a letter of an anatomical main group (A B C D G H J
// L M N P R S V), level 2 two digits, levels 3 and 4 a letter each, level 5
// two digits, e.g. L, L01, L01B, L01BC, L01BC59. Upper case only.
// Returns the level (1..5) of a well-formed code or group, 0 otherwise.
int AtcLevel(std::string_view code);
// The 7-character substance code (level 5), e.g. "L01BC59".
bool IsAtcSubstanceCode(std::string_view code);
// Why `code` is not acceptable as an ATC substance code (or, with
// `allow_group`, as a group prefix); empty when it is.
std::string AtcProblem(std::string_view code, bool allow_group);

// ICD-10 code shape: a letter, a digit, a digit (or a letter, as in the
// ICD-10-CM "C7A.8"), optionally a dot and one to four letters or digits
// ("C18", "C18.9", "J33.9"; "DC189" and "XYZ" are not). Upper case.
bool IsIcd10Code(std::string_view code);
// A prefix of an ICD-10 code, for filters: "C", "C1", "C18", "C18.", "C18.9".
bool IsIcd10Prefix(std::string_view code);

// "yes" / "no" exactly, as in the export format.
std::optional<bool> ParseYesNo(std::string_view text);

}  // namespace medkoord::csv
