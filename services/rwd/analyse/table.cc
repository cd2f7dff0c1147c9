#include "services/rwd/analyse/table.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/csv/reader.h"

namespace medkoord::analyse {

int Table::Find(std::string_view name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return static_cast<int>(i);
  return -1;
}

absl::StatusOr<Table> ParseCsv(std::string_view text) {
  csv::ReaderOptions options;
  options.max_record_bytes = 1 << 20;
  csv::Reader reader(options);
  reader.Feed(text);
  reader.Finish();
  Table table;
  csv::Record rec;
  bool header = true;
  while (reader.Next(rec)) {
    if (!rec.error.empty())
      return absl::InvalidArgumentError(absl::StrCat("line ", rec.line, ": ", rec.error));
    if (header) {
      table.columns = rec.fields;
      table.cells.resize(table.columns.size());
      header = false;
      continue;
    }
    if (rec.fields.size() != table.columns.size())
      return absl::InvalidArgumentError(absl::StrCat("line ", rec.line, ": ", rec.fields.size(),
                                                     " fields where the header has ",
                                                     table.columns.size()));
    for (size_t c = 0; c < rec.fields.size(); ++c) table.cells[c].push_back(std::move(rec.fields[c]));
  }
  if (reader.failed())
    return absl::InvalidArgumentError(
        absl::StrCat("line ", reader.error().line, ": ", reader.error().message));
  if (header) return absl::InvalidArgumentError("empty file: no header line");
  return table;
}

absl::StatusOr<Table> ReadCsvFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  return ParseCsv(buf.str());
}

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool IsMissing(std::string_view cell) {
  cell = Trim(cell);
  return cell.empty() || cell == "NA";
}

std::optional<double> ParseNumber(std::string_view cell) {
  cell = Trim(cell);
  if (cell.empty() || cell == "NA") return std::nullopt;
  std::string s(cell);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE) return std::nullopt;
  return v;
}

bool IsNumericColumn(const Table& table, int column) {
  bool any = false;
  for (const auto& cell : table.cells[column]) {
    if (IsMissing(cell)) continue;
    if (!ParseNumber(cell)) return false;
    any = true;
  }
  return any;
}

}  // namespace medkoord::analyse
