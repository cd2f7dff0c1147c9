#include "common/csv/validators.h"

#include <gtest/gtest.h>

namespace medkoord::csv {
namespace {

TEST(IsoDate, ParsesRealDatesOnly) {
  auto d = ParseIsoDate("2024-02-29");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->year, 2024);
  EXPECT_EQ(d->month, 2);
  EXPECT_EQ(d->day, 29);
  EXPECT_EQ(FormatIsoDate(*d), "2024-02-29");
  EXPECT_FALSE(ParseIsoDate("2023-02-29"));
  EXPECT_FALSE(ParseIsoDate("2024-13-01"));
  EXPECT_FALSE(ParseIsoDate("2024-04-31"));
  EXPECT_FALSE(ParseIsoDate("2024-1-01"));
  EXPECT_FALSE(ParseIsoDate("2024/01/01"));
  EXPECT_FALSE(ParseIsoDate(" 2024-01-01"));
  EXPECT_FALSE(ParseIsoDate(""));
  EXPECT_TRUE(ParseIsoDate("2000-02-29"));
  EXPECT_FALSE(ParseIsoDate("1900-02-29"));
}

TEST(IsoDate, Orders) {
  EXPECT_TRUE(*ParseIsoDate("2024-05-01") < *ParseIsoDate("2024-05-10"));
  EXPECT_FALSE(*ParseIsoDate("2024-05-10") < *ParseIsoDate("2024-05-10"));
}

TEST(Atc, LevelsAndSubstances) {
  EXPECT_EQ(AtcLevel("L"), 1);
  EXPECT_EQ(AtcLevel("L01"), 2);
  EXPECT_EQ(AtcLevel("L01E"), 3);
  EXPECT_EQ(AtcLevel("L01BC"), 4);
  EXPECT_EQ(AtcLevel("L01BC59"), 5);
  EXPECT_TRUE(IsAtcSubstanceCode("R03DX09"));
  EXPECT_FALSE(IsAtcSubstanceCode("L01E"));
  EXPECT_EQ(AtcLevel("L0"), 0);
  EXPECT_EQ(AtcLevel("L01BC5"), 0);
  EXPECT_EQ(AtcLevel("l01bc59"), 0);     // upper case only
  EXPECT_EQ(AtcLevel("X01BC59"), 0);     // no such main group
  EXPECT_EQ(AtcLevel("L01BC590"), 0);
  EXPECT_EQ(AtcLevel("L0XBC59"), 0);
}

TEST(Atc, ProblemsSayWhy) {
  EXPECT_EQ(AtcProblem("L01BC59", false), "");
  EXPECT_EQ(AtcProblem("L01E", false), "`L01E` is an ATC group, not a 7-character substance code");
  EXPECT_EQ(AtcProblem("L01E", true), "");
  EXPECT_EQ(AtcProblem("", false), "required");
  EXPECT_NE(AtcProblem("ABC", true), "");
  EXPECT_EQ(AtcProblem(std::string(100, 'Q'), false),
            "the value is not an ATC code (letter, 2 digits, 2 letters, 2 digits, e.g. L01BC59)");
}

TEST(Icd10, Shapes) {
  EXPECT_TRUE(IsIcd10Code("C18.9"));
  EXPECT_TRUE(IsIcd10Code("C18"));
  EXPECT_TRUE(IsIcd10Code("J33.9"));
  EXPECT_TRUE(IsIcd10Code("C56"));
  EXPECT_TRUE(IsIcd10Code("C7A.8"));
  EXPECT_FALSE(IsIcd10Code("CA7"));
  EXPECT_FALSE(IsIcd10Code("XYZ"));
  EXPECT_FALSE(IsIcd10Code("C18."));
  EXPECT_FALSE(IsIcd10Code("c18.9"));
  EXPECT_FALSE(IsIcd10Code("C1"));
  EXPECT_FALSE(IsIcd10Code("C189"));
  EXPECT_TRUE(IsIcd10Prefix("C"));
  EXPECT_TRUE(IsIcd10Prefix("C1"));
  EXPECT_TRUE(IsIcd10Prefix("C18."));
  EXPECT_FALSE(IsIcd10Prefix("1C"));
  EXPECT_FALSE(IsIcd10Prefix("CX"));
}

TEST(YesNo, Exact) {
  EXPECT_EQ(ParseYesNo("yes"), true);
  EXPECT_EQ(ParseYesNo("no"), false);
  EXPECT_FALSE(ParseYesNo("ja"));
  EXPECT_FALSE(ParseYesNo("Yes"));
  EXPECT_FALSE(ParseYesNo(""));
}

}  // namespace
}  // namespace medkoord::csv
