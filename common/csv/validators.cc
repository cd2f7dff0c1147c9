#include "common/csv/validators.h"

#include <cstdio>

namespace medkoord::csv {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

int Digits(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

bool IsValidDate(int year, int month, int day) {
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  const int max = month == 2 && leap ? 29 : kDays[month - 1];
  return day <= max;
}

std::optional<Date> ParseIsoDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!IsDigit(text[i])) return std::nullopt;
  }
  Date d{Digits(text.substr(0, 4)), Digits(text.substr(5, 2)), Digits(text.substr(8, 2))};
  if (!IsValidDate(d.year, d.month, d.day)) return std::nullopt;
  return d;
}

std::string FormatIsoDate(const Date& date) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", date.year, date.month, date.day);
  return buf;
}

int AtcLevel(std::string_view code) {
  static constexpr std::string_view kMainGroups = "ABCDGHJLMNPRSV";
  // Position -> expected class: letter, digit, digit, letter, letter, digit, digit.
  static constexpr char kShape[] = "LDDLLDD";
  if (code.empty() || code.size() > 7) return 0;
  if (kMainGroups.find(code[0]) == std::string_view::npos) return 0;
  for (size_t i = 1; i < code.size(); ++i) {
    const bool ok = kShape[i] == 'D' ? IsDigit(code[i]) : IsUpper(code[i]);
    if (!ok) return 0;
  }
  switch (code.size()) {
    case 1: return 1;
    case 3: return 2;
    case 4: return 3;
    case 5: return 4;
    case 7: return 5;
    default: return 0;  // 2 or 6 characters: half of a level
  }
}

bool IsAtcSubstanceCode(std::string_view code) { return AtcLevel(code) == 5; }

std::string AtcProblem(std::string_view code, bool allow_group) {
  const int level = AtcLevel(code);
  if (level == 5) return "";
  // Echo the value only when it is short plain ASCII: reasons end up in
  // responses (protobuf strings must be UTF-8) and must stay small.
  bool echo = code.size() <= 16;
  for (char c : code) echo = echo && c >= 0x20 && c < 0x7f;
  const std::string quoted = echo ? "`" + std::string(code) + "`" : std::string("the value");
  if (level == 0) {
    if (code.empty()) return "required";
    return quoted + " is not an ATC code (letter, 2 digits, 2 letters, 2 digits, e.g. L01BC59)";
  }
  if (allow_group) return "";
  return quoted + " is an ATC group, not a 7-character substance code";
}

bool IsIcd10Code(std::string_view code) {
  // The third character is a letter in a few codes (ICD-10-CM "C7A.8").
  if (code.size() < 3 || !IsUpper(code[0]) || !IsDigit(code[1]) || !(IsDigit(code[2]) || IsUpper(code[2]))) {
    return false;
  }
  if (code.size() == 3) return true;
  if (code[3] != '.' || code.size() < 5 || code.size() > 8) return false;
  for (size_t i = 4; i < code.size(); ++i) {
    if (!IsDigit(code[i]) && !IsUpper(code[i])) return false;
  }
  return true;
}

bool IsIcd10Prefix(std::string_view code) {
  if (code.empty() || !IsUpper(code[0])) return false;
  if (code.size() >= 2 && !IsDigit(code[1])) return false;
  if (code.size() >= 3 && !IsDigit(code[2]) && !IsUpper(code[2])) return false;
  if (code.size() <= 3) return true;
  if (code[3] != '.' || code.size() > 8) return false;
  for (size_t i = 4; i < code.size(); ++i) {
    if (!IsDigit(code[i]) && !IsUpper(code[i])) return false;
  }
  return true;
}

std::optional<bool> ParseYesNo(std::string_view text) {
  if (text == "yes") return true;
  if (text == "no") return false;
  return std::nullopt;
}

}  // namespace medkoord::csv
