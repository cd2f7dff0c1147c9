#include "common/csv/reader.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace medkoord::csv {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<Record> ReadAll(const std::string& input, size_t chunk, ReaderOptions options = {},
                            FatalError* fatal = nullptr) {
  Reader reader(options);
  std::vector<Record> records;
  Record r;
  for (size_t i = 0; i < input.size(); i += chunk) {
    reader.Feed(std::string_view(input).substr(i, chunk));
    while (reader.Next(r)) records.push_back(r);
  }
  reader.Finish();
  while (reader.Next(r)) records.push_back(r);
  if (fatal != nullptr) *fatal = reader.failed() ? reader.error() : FatalError{};
  return records;
}

// Every test input is read whole and split into 1-byte and 3-byte chunks: the
// result must not depend on where chunks end.
std::vector<Record> ReadEveryWay(const std::string& input, ReaderOptions options = {}) {
  auto whole = ReadAll(input, input.size() + 1, options);
  for (size_t chunk : {1, 2, 3, 7}) {
    auto split = ReadAll(input, chunk, options);
    EXPECT_EQ(split.size(), whole.size()) << "chunk " << chunk;
    for (size_t i = 0; i < split.size() && i < whole.size(); ++i) {
      EXPECT_EQ(split[i].fields, whole[i].fields) << "chunk " << chunk << " record " << i;
      EXPECT_EQ(split[i].line, whole[i].line);
      EXPECT_EQ(split[i].error, whole[i].error);
    }
  }
  return whole;
}

TEST(CsvReader, PlainRecordsWithLineNumbers) {
  auto r = ReadEveryWay("a,b,c\n1,2,3\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_THAT(r[0].fields, ElementsAre("a", "b", "c"));
  EXPECT_THAT(r[1].fields, ElementsAre("1", "2", "3"));
  EXPECT_EQ(r[0].line, 1);
  EXPECT_EQ(r[1].line, 2);
}

TEST(CsvReader, LastRecordWithoutLineBreak) {
  auto r = ReadEveryWay("a,b\n1,");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_THAT(r[1].fields, ElementsAre("1", ""));
}

TEST(CsvReader, QuotesDoubledQuotesAndEmbeddedBreaks) {
  auto r = ReadEveryWay("x,\"a, b\",\"say \"\"hi\"\"\"\r\n\"multi\r\nline\",\"\",z\r\nnext,1,2\r\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_THAT(r[0].fields, ElementsAre("x", "a, b", "say \"hi\""));
  EXPECT_THAT(r[1].fields, ElementsAre("multi\r\nline", "", "z"));
  EXPECT_EQ(r[1].line, 2);
  // The quoted line break moved the file line on.
  EXPECT_EQ(r[2].line, 4);
  for (const auto& rec : r) EXPECT_THAT(rec.error, IsEmpty());
}

TEST(CsvReader, CrlfAndLoneCrEndRecords) {
  auto r = ReadEveryWay("a\r\nb\rc\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].line, 3);
  EXPECT_THAT(r[2].fields, ElementsAre("c"));
}

TEST(CsvReader, BomIsSkippedEvenWhenSplit) {
  auto r = ReadEveryWay("\xEF\xBB\xBFh1,h2\nv1,v2\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_THAT(r[0].fields, ElementsAre("h1", "h2"));
}

TEST(CsvReader, BlankLinesAreSkippedButCounted) {
  auto r = ReadEveryWay("a\n\nb\n\"\"\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].line, 3);
  EXPECT_THAT(r[2].fields, ElementsAre(""));  // a quoted empty field is data
}

TEST(CsvReader, InvalidUtf8IsARowErrorNamingTheField) {
  auto r = ReadEveryWay("a,b\nok,caf\xE9\nnext,\xC3\xA6\xC3\xB8\xC3\xA5\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].line, 2);
  EXPECT_EQ(r[1].error, "not valid UTF-8");
  EXPECT_EQ(r[1].error_field, 1);
  EXPECT_THAT(r[2].error, IsEmpty());
  EXPECT_THAT(r[2].fields, ElementsAre("next", "æøå"));
}

TEST(CsvReader, StrayQuotesAreRowErrorsAndReadingGoesOn) {
  auto r = ReadEveryWay("a,b\"c\n\"x\"y,z\nfine,1\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].error_field, 1);
  EXPECT_THAT(r[0].error, ::testing::HasSubstr("quote inside an unquoted field"));
  EXPECT_EQ(r[1].error_field, 0);
  EXPECT_THAT(r[1].error, ::testing::HasSubstr("after the closing quote"));
  EXPECT_THAT(r[2].error, IsEmpty());
}

TEST(CsvReader, RecordOverTheLimitIsFatal) {
  ReaderOptions options;
  options.max_record_bytes = 16;
  FatalError fatal;
  auto r = ReadAll("short,1\n" + std::string(100, 'x') + "\nafter\n", 5, options, &fatal);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(fatal.line, 2);
  EXPECT_THAT(fatal.message, ::testing::HasSubstr("longer than 16 bytes"));
}

TEST(CsvReader, UnterminatedQuoteIsFatalAtTheEnd) {
  FatalError fatal;
  auto r = ReadAll("a\nb\n\"open,\nstill open\n", 4, {}, &fatal);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(fatal.line, 3);
  EXPECT_THAT(fatal.message, ::testing::HasSubstr("not closed"));
}

TEST(CsvWriter, QuotesOnlyWhenNeededAndRoundTrips) {
  std::string out;
  AppendField(out, "plain");
  out.push_back(',');
  AppendField(out, "Lung cancer, non-squamous");
  out.push_back(',');
  AppendField(out, "a \"b\"\nc");
  out.push_back('\n');
  EXPECT_EQ(out, "plain,\"Lung cancer, non-squamous\",\"a \"\"b\"\"\nc\"\n");
  auto r = ReadEveryWay(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_THAT(r[0].fields, ElementsAre("plain", "Lung cancer, non-squamous", "a \"b\"\nc"));
}

TEST(Utf8, AcceptsWellFormedRejectsMalformed) {
  EXPECT_TRUE(IsValidUtf8("Sjælland €𝄞"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace medkoord::csv
