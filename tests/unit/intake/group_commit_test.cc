#include "services/intake/group_commit.h"
#include "services/intake/submit_settings.h"

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace medkoord::intake {
namespace {

using ::testing::ElementsAre;

// A write function that records each batch and can hold a write until the
// test lets it go, so that the test decides who queues behind whom.
class Recorder {
 public:
  std::vector<std::string> Write(const std::vector<const int*>& batch) {
    std::vector<std::string> out;
    std::vector<int> inputs;
    for (const int* in : batch) {
      inputs.push_back(*in);
      out.push_back("r" + std::to_string(*in));
    }
    absl::MutexLock lock(&mu_);
    batches_.push_back(inputs);
    ++in_write_;
    auto released = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (hold_) return false;
      for (int in : inputs) {
        if (held_.count(in)) return false;
      }
      return true;
    };
    mu_.Await(absl::Condition(&released));
    --in_write_;
    return out;
  }
  void Hold(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  // Holds (or lets go of) the writes of batches that contain `in`.
  void HoldItem(int in, bool hold) {
    absl::MutexLock lock(&mu_);
    if (hold) {
      held_.insert(in);
    } else {
      held_.erase(in);
    }
  }
  void AwaitWrites(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_write_ == n; };
    mu_.Await(absl::Condition(&reached));
  }
  std::vector<std::vector<int>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  absl::Mutex mu_;
  bool hold_ = false;
  std::set<int> held_;
  int in_write_ = 0;
  std::vector<std::vector<int>> batches_;
};

using Commit = GroupCommit<int, std::string>;

Commit Make(Recorder& r, GroupCommitOptions options) {
  return Commit(options, [&r](const std::vector<const int*>& batch) { return r.Write(batch); });
}

// Waits until `n` calls are queued (queueing never blocks on anything the
// test holds, so this ends).
void AwaitQueued(const Commit& commit, size_t n) {
  while (commit.queued() != n) std::this_thread::yield();
}

TEST(IntakeGroupCommitTest, ACallAloneIsWrittenAtOnceByItself) {
  Recorder r;
  Commit commit = Make(r, {});
  EXPECT_EQ(commit.Run(7), "r7");
  EXPECT_EQ(commit.Run(8), "r8");
  EXPECT_THAT(r.batches(), ElementsAre(ElementsAre(7), ElementsAre(8)));
  EXPECT_EQ(commit.stats().batches, 2);
  EXPECT_EQ(commit.stats().largest, 1u);
}

TEST(IntakeGroupCommitTest, CallersArrivingDuringAWriteGoInTheNextBatchAndGetTheirOwnResults) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 64, .max_writers = 1});
  r.Hold(true);
  std::string first;
  std::thread writer([&] { first = commit.Run(0); });
  r.AwaitWrites(1);
  std::vector<std::string> results(10);
  std::vector<std::thread> threads;
  for (int i = 1; i <= 10; ++i) threads.emplace_back([&, i] { results[i - 1] = commit.Run(i); });
  AwaitQueued(commit, 10);
  r.Hold(false);
  writer.join();
  for (auto& t : threads) t.join();
  EXPECT_EQ(first, "r0");
  for (int i = 1; i <= 10; ++i) EXPECT_EQ(results[i - 1], "r" + std::to_string(i));
  const auto batches = r.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0], ElementsAre(0));
  EXPECT_EQ(batches[1].size(), 10u);  // everything that queued, in one write
  EXPECT_EQ(commit.stats().items, 11);
  EXPECT_EQ(commit.stats().largest, 10u);
}

TEST(IntakeGroupCommitTest, BatchesAreBoundedAndEveryCallerIsAnswered) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 8, .max_writers = 1});
  r.Hold(true);
  std::thread writer([&] { commit.Run(0); });
  r.AwaitWrites(1);
  constexpr int kCallers = 20;
  std::vector<std::string> results(kCallers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) threads.emplace_back([&, i] { results[i] = commit.Run(100 + i); });
  AwaitQueued(commit, kCallers);
  r.Hold(false);
  writer.join();
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCallers; ++i) EXPECT_EQ(results[i], "r" + std::to_string(100 + i));
  size_t total = 0;
  for (const auto& b : r.batches()) {
    EXPECT_LE(b.size(), 8u);
    total += b.size();
  }
  EXPECT_EQ(total, kCallers + 1u);
  EXPECT_EQ(r.batches().size(), 4u);  // 1, then 8 + 8 + 4
}

TEST(IntakeGroupCommitTest, UpToMaxWritersBatchesAreWrittenAtOnce) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 64, .max_writers = 2});
  r.Hold(true);
  std::thread a([&] { commit.Run(1); });
  r.AwaitWrites(1);
  std::thread b([&] { commit.Run(2); });
  r.AwaitWrites(2);  // the second writer takes it while the first is busy
  std::thread c([&] { commit.Run(3); });
  AwaitQueued(commit, 1);  // the third waits for a free writer slot
  r.Hold(false);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(r.batches().size(), 3u);
  EXPECT_THAT(r.batches()[2], ElementsAre(3));
}

// Two writers; writer A writes [0] and writer B [1] until the test lets them
// go, then B takes [2, 3], which queued meanwhile, and A finishes: A is free
// while B writes two calls, so three calls in the service (with the next)
// outnumber the two writers. Returns the threads running calls 0..3.
std::vector<std::thread> LoadOneWriterWithTwoCalls(Commit& commit, Recorder& r) {
  for (int i = 0; i <= 3; ++i) r.HoldItem(i, true);
  std::vector<std::thread> calls;
  Commit* c = &commit;
  calls.emplace_back([c] { c->Run(0); });
  r.AwaitWrites(1);
  calls.emplace_back([c] { c->Run(1); });
  r.AwaitWrites(2);  // not loaded yet: 2 calls, 2 writers
  calls.emplace_back([c] { c->Run(2); });
  AwaitQueued(commit, 1);
  calls.emplace_back([c] { c->Run(3); });
  AwaitQueued(commit, 2);
  r.HoldItem(1, false);  // B finishes [1] and takes both queued calls
  AwaitQueued(commit, 0);
  r.HoldItem(0, false);  // A finishes [0]; B still writes [2, 3]
  calls.front().join();
  calls.erase(calls.begin());
  return calls;
}

TEST(IntakeGroupCommitTest, UnderLoadAFreeWriterWaitsForASecondCallWhileABatchIsBeingWritten) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 64, .max_writers = 2, .min_batch = 2, .max_wait = absl::InfiniteDuration()});
  std::vector<std::thread> calls = LoadOneWriterWithTwoCalls(commit, r);
  calls.emplace_back([&] { commit.Run(4); });
  AwaitQueued(commit, 1);  // A does not take 4 alone: 3 calls in the service, 2 writers
  calls.emplace_back([&] { commit.Run(5); });
  // Until 5 is queued or taken (taken alone, 4 would show as its own batch).
  while (commit.queued() + static_cast<size_t>(commit.stats().items) < 6) std::this_thread::yield();
  for (int i = 2; i <= 3; ++i) r.HoldItem(i, false);
  for (auto& t : calls) t.join();
  EXPECT_THAT(r.batches(), ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2, 3), ElementsAre(4, 5)));
}

TEST(IntakeGroupCommitTest, UnderLoadALoneCallWaitsOnlyUntilTheBatchBeingWrittenIsDone) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 64, .max_writers = 2, .min_batch = 2, .max_wait = absl::InfiniteDuration()});
  std::vector<std::thread> calls = LoadOneWriterWithTwoCalls(commit, r);
  std::string result;
  calls.emplace_back([&] { result = commit.Run(4); });
  AwaitQueued(commit, 1);
  for (int i = 2; i <= 3; ++i) r.HoldItem(i, false);  // no batch is written any more: 4 goes alone
  for (auto& t : calls) t.join();
  EXPECT_EQ(result, "r4");
  EXPECT_THAT(r.batches(), ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2, 3), ElementsAre(4)));
}

TEST(IntakeGroupCommitTest, UnderLoadALoneCallWaitsNoLongerThanMaxWaitForABatchThatIsStuck) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 64, .max_writers = 2, .min_batch = 2, .max_wait = absl::Milliseconds(1)});
  std::vector<std::thread> calls = LoadOneWriterWithTwoCalls(commit, r);
  absl::Notification written;
  std::string result;
  calls.emplace_back([&] {
    result = commit.Run(4);
    written.Notify();
  });
  // B still writes [2, 3] (held: stuck on a lock, say); 4 is written anyway.
  EXPECT_TRUE(written.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(r.batches().size(), 4u);
  for (int i = 2; i <= 3; ++i) r.HoldItem(i, false);
  for (auto& t : calls) t.join();
  EXPECT_EQ(result, "r4");
  EXPECT_THAT(r.batches(), ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2, 3), ElementsAre(4)));
}

TEST(IntakeGroupCommitTest, WithMinBatchOneAFreeWriterTakesALoneCallAtOnceEvenUnderLoad) {
  Recorder r;
  Commit commit = Make(r, {.max_batch = 64, .max_writers = 2, .min_batch = 1});
  std::vector<std::thread> calls = LoadOneWriterWithTwoCalls(commit, r);
  r.HoldItem(4, true);
  calls.emplace_back([&] { commit.Run(4); });
  r.AwaitWrites(2);  // A writes [4] while B still writes [2, 3]
  for (int i = 2; i <= 4; ++i) r.HoldItem(i, false);
  for (auto& t : calls) t.join();
  EXPECT_THAT(r.batches(), ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2, 3), ElementsAre(4)));
}

TEST(IntakeGroupCommitTest, StartReturnsAtOnceAndDoneGetsTheCallsOwnResult) {
  Recorder r;
  std::vector<std::string> results(5);
  absl::Mutex mu;
  int done = 0;
  {
    Commit commit = Make(r, {.max_batch = 64, .max_writers = 1});
    r.Hold(true);
    for (int i = 0; i < 5; ++i) {
      // Returns while the writer is held: the caller never blocks on a write.
      commit.Start(i, [&, i](const int& in, std::string out) {
        EXPECT_EQ(in, i);
        absl::MutexLock lock(&mu);
        results[i] = std::move(out);
        ++done;
      });
    }
    r.AwaitWrites(1);
    r.Hold(false);
    // Leaving the scope writes what is still queued before the writers stop.
  }
  EXPECT_EQ(done, 5);
  EXPECT_THAT(results, ElementsAre("r0", "r1", "r2", "r3", "r4"));
  size_t total = 0;
  for (const auto& b : r.batches()) total += b.size();
  EXPECT_EQ(total, 5u);
}

absl::StatusOr<GroupCommitOptions> ReadBatching(std::vector<std::string> flags,
                                                std::map<std::string, std::string> env, int pool_size) {
  Config config(std::move(flags), std::move(env));
  absl::StatusOr<GroupCommitOptions> options = ReadSubmitBatching(config, pool_size);
  absl::Status finished = config.Finish();
  if (!finished.ok()) return finished;
  return options;
}

TEST(SubmitSettingsTest, DefaultsFlagsAndEnvironment) {
  absl::StatusOr<GroupCommitOptions> d = ReadBatching({}, {}, 8);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->max_writers, 4);
  EXPECT_EQ(d->max_batch, 64u);
  EXPECT_EQ(d->min_batch, 4u);
  EXPECT_EQ(d->max_wait, absl::Milliseconds(2));
  // A small pool gets fewer writers: half of it, at least one.
  EXPECT_EQ(ReadBatching({}, {}, 4)->max_writers, 2);
  EXPECT_EQ(ReadBatching({}, {}, 1)->max_writers, 1);
  absl::StatusOr<GroupCommitOptions> s =
      ReadBatching({"--submit_writers=7", "--submit_min_batch=5"},
                   {{"MEDKOORD_SUBMIT_MAX_BATCH", "200"}, {"MEDKOORD_SUBMIT_MAX_WAIT", "500us"}}, 16);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->max_writers, 7);
  EXPECT_EQ(s->max_batch, 200u);
  EXPECT_EQ(s->min_batch, 5u);
  EXPECT_EQ(s->max_wait, absl::Microseconds(500));
}

TEST(SubmitSettingsTest, WritersAreBoundedByThePoolAndBatchesBySize) {
  absl::StatusOr<GroupCommitOptions> s = ReadBatching({"--submit_writers=9", "--submit_max_batch=0"}, {}, 8);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr("--submit_writers must be between 1 and --db_pool_size (8), got 9"));
  EXPECT_THAT(s.status().message(), ::testing::HasSubstr("--submit_max_batch must be between 1 and 1000, got 0"));
  EXPECT_FALSE(ReadBatching({"--submit_writers=0"}, {}, 8).ok());
  EXPECT_TRUE(ReadBatching({"--submit_writers=8"}, {}, 8).ok());
  EXPECT_FALSE(ReadBatching({"--submit_max_batch=1001"}, {}, 8).ok());
  absl::StatusOr<GroupCommitOptions> m = ReadBatching({"--submit_max_batch=8", "--submit_min_batch=9"}, {}, 8);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr("--submit_min_batch must be between 1 and --submit_max_batch (8), got 9"));
  EXPECT_FALSE(ReadBatching({"--submit_min_batch=0"}, {}, 8).ok());
  EXPECT_TRUE(ReadBatching({"--submit_min_batch=1"}, {}, 8).ok());
  absl::StatusOr<GroupCommitOptions> w = ReadBatching({"--submit_max_wait=1s"}, {}, 8);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), ::testing::HasSubstr("--submit_max_wait must be between 0s and 100ms, got 1s"));
  EXPECT_TRUE(ReadBatching({"--submit_max_wait=0s"}, {}, 8).ok());
}

}  // namespace
}  // namespace medkoord::intake
