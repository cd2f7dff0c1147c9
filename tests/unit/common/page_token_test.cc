#include "common/page_token.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"

namespace medkoord {
namespace {

using ::testing::ElementsAre;

TEST(PageTokenTest, RoundTripsKeyset) {
  const uint64_t h = FilterHash("region=syddanmark");
  std::string token = EncodePageToken({"2024-03-01", "A-17"}, h);
  auto keys = DecodePageToken(token, h);
  ASSERT_TRUE(keys.ok());
  EXPECT_THAT(*keys, ElementsAre("2024-03-01", "A-17"));
}

TEST(PageTokenTest, RefusesTokensForOtherFiltersAndGarbage) {
  std::string token = EncodePageToken({"k"}, FilterHash("region=syddanmark"));
  auto other = DecodePageToken(token, FilterHash("region=hovedstaden"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolationsOf(other.status())[0].first, "page_token");
  EXPECT_FALSE(DecodePageToken("!!!not-base64", 0).ok());
  EXPECT_FALSE(DecodePageToken("AAAA", 0).ok());
  EXPECT_FALSE(DecodePageToken(std::string(5000, 'A'), 0).ok());
}

TEST(PageRequestTest, DefaultsClampsAndValidates) {
  auto r = ParsePageRequest(0, "", 0, 50, 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->page_size, 50);
  EXPECT_TRUE(r->after.empty());
  EXPECT_EQ(ParsePageRequest(5000, "", 0, 50, 1000)->page_size, 1000);
  auto bad = ParsePageRequest(-1, "garbage!", 0, 50, 1000);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldViolationsOf(bad.status()).size(), 2u);
}

TEST(FilterHashTest, IsStable) {
  // FNV-1a of "" and "a": fixed values, the same in every process and build.
  EXPECT_EQ(FilterHash(""), 14695981039346656037ULL);
  EXPECT_EQ(FilterHash("a"), 0xaf63dc4c8601ec8cULL);
}

}  // namespace
}  // namespace medkoord
