#include "services/intake/import_parser.h"
#include "services/intake/text.h"


namespace medkoord::intake {

ApplicationCsvParser::ApplicationCsvParser(const csv::Date& today, size_t max_record_bytes)
    : today_(today), reader_(csv::ReaderOptions{.max_record_bytes = max_record_bytes}) {}

void ApplicationCsvParser::Feed(std::string_view chunk) {
  if (fatal_) return;
  reader_.Feed(chunk);
  Drain();
}

void ApplicationCsvParser::Finish() {
  if (fatal_) return;
  reader_.Finish();
  Drain();
  if (!fatal_ && !format_) fatal_ = "the file is empty: the header row is missing";
}

bool ApplicationCsvParser::has_region_ref_column() const {
  if (!format_) return false;
  for (size_t i = 0; i < format_->column_count(); ++i) {
    if (format_->column_name(i) == "region_ref") return true;
  }
  return false;
}

void ApplicationCsvParser::Drain() {
  csv::Record record;
  while (!fatal_ && reader_.Next(record)) Take(record);
  if (!fatal_ && reader_.failed()) {
    fatal_ = Cat("line ", reader_.error().line, ": ", reader_.error().message);
  }
}

void ApplicationCsvParser::Take(csv::Record& record) {
  if (!format_) {
    if (!record.error.empty()) {
      fatal_ = Cat("line ", record.line, ": the header row is unreadable: ", record.error);
      return;
    }
    std::string error;
    format_ = ForumCsvFormat::FromHeader(record.fields, &error);
    if (!format_) fatal_ = Cat("line ", record.line, ": ", error);
    return;
  }
  ++rows_read_;
  const size_t expected = format_->column_count();
  std::string case_ref;
  for (size_t i = 0; i < expected && i < record.fields.size(); ++i) {
    // Echoed in the response only when it is one: a protobuf string must be
    // valid UTF-8, and a garbage field is not worth repeating.
    if (format_->column_name(i) == "case_ref" && IsValidCaseRef(record.fields[i])) case_ref = record.fields[i];
  }
  if (!record.error.empty()) {
    std::string column;
    if (record.error_field >= 0 && static_cast<size_t>(record.error_field) < expected) {
      column = format_->column_name(record.error_field);
    }
    errors_.push_back({record.line, column, record.error, case_ref});
    ++rows_rejected_;
    return;
  }
  if (record.fields.size() != expected) {
    errors_.push_back({record.line, "",
                       Cat(record.fields.size(), " fields where the header has ", expected,
                                    record.fields.size() > expected ? " (an unquoted comma?)" : ""),
                       case_ref});
    ++rows_rejected_;
    return;
  }
  ParsedApplication parsed = ParseApplication(format_->ToRaw(record.fields), ParseMode::kImport, today_);
  if (!parsed.violations.empty()) {
    for (Violation& v : parsed.violations) {
      errors_.push_back({record.line, std::move(v.field), std::move(v.reason), case_ref});
    }
    ++rows_rejected_;
    return;
  }
  rows_.push_back({record.line, std::move(parsed.record)});
}

}  // namespace medkoord::intake
