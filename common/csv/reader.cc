#include "common/csv/reader.h"

#include <algorithm>
#include <utility>

namespace medkoord::csv {
namespace {

constexpr std::string_view kBom("\xEF\xBB\xBF", 3);

}  // namespace

Reader::Reader(ReaderOptions options) : options_(options) { current_.line = 1; }

void Reader::Feed(std::string_view chunk) {
  if (failed_ || finished_) return;
  if (!bom_checked_) {
    // The BOM may be split over chunks: hold up to three bytes until decided.
    size_t take = std::min(kBom.size() - bom_buffer_.size(), chunk.size());
    bom_buffer_.append(chunk.substr(0, take));
    chunk.remove_prefix(take);
    if (bom_buffer_.size() < kBom.size() && kBom.substr(0, bom_buffer_.size()) == bom_buffer_) return;
    bom_checked_ = true;
    std::string held = std::move(bom_buffer_);
    bom_buffer_.clear();
    if (held != kBom) Consume(held);
  }
  Consume(chunk);
}

void Reader::Finish() {
  if (failed_ || finished_) return;
  if (!bom_checked_) {
    bom_checked_ = true;
    std::string held = std::move(bom_buffer_);
    bom_buffer_.clear();
    Consume(held);
    if (failed_) return;
  }
  finished_ = true;
  switch (state_) {
    case State::kQuoted:
      Fail("a quoted field is not closed at the end of the input");
      return;
    case State::kAfterCr:
      return;
    case State::kFieldStart:
      if (current_.fields.empty() && field_.empty()) return;
      break;
    default:
      break;
  }
  EndField();
  EndRecord();
}

bool Reader::Next(Record& out) {
  if (ready_.empty()) return false;
  out = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

void Reader::Consume(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (failed_) return;
    const char c = bytes[i];
    ++bytes_read_;
    if (state_ == State::kAfterCr) {
      state_ = State::kFieldStart;
      if (c == '\n') continue;  // CRLF: the line was already counted at CR
    }
    if (++record_bytes_ > options_.max_record_bytes) {
      Fail("record longer than " + std::to_string(options_.max_record_bytes) + " bytes");
      return;
    }
    switch (state_) {
      case State::kFieldStart:
      case State::kUnquoted:
        if (EndsField(c)) {
          // done
        } else if (c == '"' && state_ == State::kFieldStart) {
          field_quoted_ = true;
          state_ = State::kQuoted;
        } else {
          if (c == '"') SetRowError("a quote inside an unquoted field (quote the whole field and double the quote)");
          field_.push_back(c);
          state_ = State::kUnquoted;
        }
        break;
      case State::kQuoted:
        if (c == '"') {
          state_ = State::kQuoteInQuoted;
        } else {
          if (c == '\n') ++line_;
          field_.push_back(c);
        }
        break;
      case State::kQuoteInQuoted:
        if (c == '"') {
          field_.push_back('"');
          state_ = State::kQuoted;
        } else if (!EndsField(c)) {
          SetRowError("text after the closing quote of a quoted field");
          field_.push_back(c);
          state_ = State::kUnquoted;
        }
        break;
      case State::kAfterCr:
        break;  // handled above
    }
  }
}

bool Reader::EndsField(char c) {
  if (c == options_.separator) {
    EndField();
    state_ = State::kFieldStart;
    return true;
  }
  if (c == '\n' || c == '\r') {
    EndField();
    EndRecord();
    state_ = c == '\r' ? State::kAfterCr : State::kFieldStart;
    return true;
  }
  return false;
}

void Reader::EndField() {
  if (current_.error.empty() && !IsValidUtf8(field_)) {
    current_.error = "not valid UTF-8";
    current_.error_field = static_cast<int>(current_.fields.size());
  }
  current_.fields.push_back(std::move(field_));
  field_.clear();
  last_field_quoted_ = field_quoted_;
  field_quoted_ = false;
}

void Reader::EndRecord() {
  // A blank line is one empty unquoted field; it carries no data.
  const bool blank = current_.fields.size() == 1 && current_.fields[0].empty() && !last_field_quoted_ &&
                     current_.error.empty();
  if (!blank) ready_.push_back(std::move(current_));
  ++line_;
  current_ = Record();
  current_.line = line_;
  record_bytes_ = 0;
}

void Reader::SetRowError(std::string message) {
  if (!current_.error.empty()) return;
  current_.error = std::move(message);
  current_.error_field = static_cast<int>(current_.fields.size());
}

void Reader::Fail(std::string message) {
  failed_ = true;
  fatal_.line = current_.line;
  fatal_.message = std::move(message);
}

void AppendField(std::string& out, std::string_view value, char separator) {
  bool quote = false;
  for (char c : value) {
    if (c == separator || c == '"' || c == '\n' || c == '\r') {
      quote = true;
      break;
    }
  }
  if (!quote) {
    out.append(value);
    return;
  }
  out.push_back('"');
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

bool IsValidUtf8(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (C0/C1) or above F4
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace medkoord::csv
