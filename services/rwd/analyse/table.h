#pragma once
// A CSV file held as text columns, with the conversions the analysis needs:
// a column is numeric when every non-missing value parses as a number, else
// it is text (a factor). Missing is an empty field (or "NA").

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace medkoord::analyse {

struct Table {
  std::vector<std::string> columns;
  // cells[c][r]: column c, data row r (0-based; CSV data line r + 1).
  std::vector<std::vector<std::string>> cells;

  size_t rows() const { return cells.empty() ? 0 : cells[0].size(); }
  // Index of a column, or -1.
  int Find(std::string_view name) const;
};

absl::StatusOr<Table> ParseCsv(std::string_view text);
absl::StatusOr<Table> ReadCsvFile(const std::string& path);

bool IsMissing(std::string_view cell);
std::optional<double> ParseNumber(std::string_view cell);
// True when every non-missing cell of the column is a number.
bool IsNumericColumn(const Table& table, int column);

}  // namespace medkoord::analyse
