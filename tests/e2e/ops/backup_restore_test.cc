// docs/OPERATIONS.md's backup and restore, as an operator runs it: every
// service database of a running suite (loaded with the demo data, the
// services still serving) is dumped with pg_dump, restored with pg_restore
// into a fresh cluster, and compared table by table
// (tests/ops/backup_restore.sh). The test checks the script's verdict and
// that what it compared is the data the suite holds.

#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/e2e/e2e_util.h"
#include "tests/e2e/suite.h"

namespace medkoord::e2e {
namespace {

using ::testing::HasSubstr;

constexpr const char* kServices[] = {"intake", "assessment", "shortage", "rwd", "gateway"};

// "backup_restore: intake      ok:  12 tables,     1234 rows, dump …" ->
// service -> rows, for the databases the script reported as equal.
std::map<std::string, long> RestoredRows(const std::string& output) {
  std::map<std::string, long> rows;
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // backup_restore: <db> ok: <n> tables, <m> rows, ...
    if (words.size() < 7 || words[0] != "backup_restore:" || words[2] != "ok:" || words[6] != "rows,") continue;
    long n = 0;
    if (absl::SimpleAtoi(words[5], &n)) rows[std::string(words[1])] = n;
  }
  return rows;
}

TEST(BackupRestoreTest, EveryServiceDatabaseRestoresIntoAFreshClusterWithEqualRowCounts) {
  if (!testing::PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL binaries not installed";
  auto suite = Suite::Start();
  ASSERT_TRUE(suite.ok()) << suite.status();
  auto key = (*suite)->CreateKey("demo", "forum_secretariat,task_force,analyst,admin");
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_TRUE((*suite)->LoadDemoData(*key).ok());

  std::string urls;
  for (const char* svc : kServices) absl::StrAppend(&urls, svc, "=", (*suite)->db_url(svc), " ");
  // What the suite holds once the outbox deliveries (cases registered in
  // assessment) and the gateway's audit batches have settled: the counts no
  // longer change for two seconds.
  auto totals = [&] {
    std::map<std::string, long> per_service;
    for (const char* svc : kServices) {
      for (const auto& [table, n] : RowCounts({{svc, (*suite)->db_url(svc)}})) per_service[svc] += n;
    }
    return per_service;
  };
  std::map<std::string, long> stored = totals();
  absl::Time stable_since = absl::Now();
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() - stable_since < absl::Seconds(2) && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
    std::map<std::string, long> now = totals();
    if (now != stored) {
      stored = std::move(now);
      stable_since = absl::Now();
    }
  }

  auto [rc, out] = RunCommand(absl::StrCat("MEDKOORD_BACKUP_URLS=", ShellQuote(urls), " bash ",
                                           ShellQuote(std::string(MEDKOORD_SOURCE_DIR) + "/tests/ops/backup_restore.sh"),
                                           " 2>&1 </dev/null"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("5 of 5 databases restored with equal row counts")) << out;
  const std::map<std::string, long> restored = RestoredRows(out);
  for (const char* svc : kServices) {
    ASSERT_TRUE(restored.count(svc)) << svc << " missing from:\n" << out;
    EXPECT_EQ(restored.at(svc), stored[svc]) << svc;
  }
  // Not an empty comparison: the demo data are in what was restored (the
  // 541 cases of 2024 in intake and in assessment, shortage positions, RWD
  // cohorts, the gateway's key and audit log).
  EXPECT_GE(restored.at("intake"), 541);
  EXPECT_GE(restored.at("assessment"), 541);
  for (const char* svc : {"shortage", "rwd", "gateway"}) EXPECT_GT(restored.at(svc), 0) << svc;
}

}  // namespace
}  // namespace medkoord::e2e
