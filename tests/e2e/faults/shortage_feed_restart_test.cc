// A WatchShortages subscriber, through the gateway, across restarts of the
// shortage service (a graceful one and a kill -9) while positions keep being
// reported: it resumes from the last sequence it got, and over all its
// streams it receives every event exactly once, in order, with no gap.

#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "medkoord/shortage/v1/shortage.grpc.pb.h"
#include "tests/e2e/faults/fault_load.h"
#include "tests/e2e/suite.h"
#include "tests/support/shortage_data.h"

namespace medkoord::e2e::faults {
namespace {

namespace sv1 = medkoord::shortage::v1;

// A feed client as a region's dashboard would run it: on any end of the
// stream it reconnects with after_sequence = the last sequence it got.
class FeedSubscriber {
 public:
  FeedSubscriber(std::shared_ptr<grpc::Channel> gateway, std::string key)
      : stub_(sv1::Shortage::NewStub(std::move(gateway))), key_(std::move(key)) {}
  ~FeedSubscriber() { Stop(); }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  // Waits until the last sequence received is at least `sequence`.
  bool AwaitSequence(int64_t sequence, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, sequence]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return last_ >= sequence; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
      if (current_ != nullptr) current_->TryCancel();
    }
    if (thread_.joinable()) thread_.join();
  }

  int64_t last() const {
    absl::MutexLock lock(&mu_);
    return last_;
  }
  std::vector<sv1::ShortageEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<std::string> stream_ends() const {
    absl::MutexLock lock(&mu_);
    return stream_ends_;
  }
  // Per resumption: time from the end of a stream to the first event of
  // the next one.
  std::vector<absl::Duration> resume_gaps() const {
    absl::MutexLock lock(&mu_);
    return resume_gaps_;
  }
  int streams() const {
    absl::MutexLock lock(&mu_);
    return streams_;
  }

 private:
  void Run() {
    absl::Duration backoff = absl::Milliseconds(20);
    absl::Time ended = absl::InfinitePast();
    while (true) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
      Authorize(ctx, key_);
      sv1::WatchShortagesRequest request;
      {
        absl::MutexLock lock(&mu_);
        if (stop_) return;
        current_ = &ctx;
        request.set_after_sequence(last_);
        ++streams_;
      }
      auto reader = stub_->WatchShortages(&ctx, request);
      sv1::WatchShortagesResponse response;
      bool first = true;
      while (reader->Read(&response)) {
        if (!response.has_event()) continue;
        absl::MutexLock lock(&mu_);
        if (first && ended != absl::InfinitePast()) resume_gaps_.push_back(absl::Now() - ended);
        first = false;
        events_.push_back(response.event());
        last_ = response.event().sequence();
      }
      const grpc::Status status = reader->Finish();
      ended = absl::Now();
      {
        absl::MutexLock lock(&mu_);
        current_ = nullptr;
        stream_ends_.push_back(absl::StrCat(status.error_code(), " ", status.error_message()));
        if (stop_) return;
      }
      if (!first) backoff = absl::Milliseconds(20);
      // A client's backoff between reconnects, not a wait for a condition.
      absl::SleepFor(backoff);
      backoff = std::min(backoff * 2, absl::Milliseconds(500));
    }
  }

  std::unique_ptr<sv1::Shortage::Stub> stub_;
  std::string key_;
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  int64_t last_ ABSL_GUARDED_BY(mu_) = 0;
  int streams_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<sv1::ShortageEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> stream_ends_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> resume_gaps_ ABSL_GUARDED_BY(mu_);
};

// The Task Force reporting regional stock positions back to back, each with
// its own request_id, retried on UNAVAILABLE until acknowledged.
class PositionWriter {
 public:
  PositionWriter(std::shared_ptr<grpc::Channel> gateway, std::string key, std::string shortage)
      : stub_(sv1::Shortage::NewStub(std::move(gateway))), key_(std::move(key)), shortage_(std::move(shortage)) {}
  ~PositionWriter() { Stop(); }

  void Start() { thread_ = std::thread([this] { Run(); }); }
  // Lets the position in flight be acknowledged, then joins.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> acknowledged() const {
    absl::MutexLock lock(&mu_);
    return acknowledged_;
  }
  std::vector<std::string> failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }
  int retried() const {
    absl::MutexLock lock(&mu_);
    return retried_;
  }

 private:
  void Run() {
    for (int n = 1; !stop_.load(); ++n) {
      sv1::ReportPositionRequest request;
      request.set_parent(shortage_);
      request.set_request_id(absl::StrCat("position-", n));
      sv1::RegionalPosition* p = request.mutable_position();
      p->set_region(static_cast<medkoord::common::v1::Region>(1 + n % 5));
      p->set_stock_packs(500 + n % 500);
      p->set_weekly_consumption_packs(12.5);
      p->set_patients_on_treatment(40);
      sv1::RegionalPosition stored;
      int attempts = 0;
      grpc::Status status = RetryUnavailable(
          [&] {
            grpc::ClientContext ctx;
            ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
            Authorize(ctx, key_);
            stored.Clear();
            return stub_->ReportPosition(&ctx, request, &stored);
          },
          absl::Minutes(2), &attempts);
      absl::MutexLock lock(&mu_);
      if (attempts > 1) ++retried_;
      if (!status.ok()) {
        failures_.push_back(absl::StrCat(request.request_id(), ": ", status.error_code(), " ", status.error_message()));
        return;
      }
      acknowledged_.push_back(stored.name());
    }
  }

  std::unique_ptr<sv1::Shortage::Stub> stub_;
  std::string key_;
  std::string shortage_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<std::string> acknowledged_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> failures_ ABSL_GUARDED_BY(mu_);
  int retried_ ABSL_GUARDED_BY(mu_) = 0;
};

class ShortageFeedRestartTest : public FaultTest {};

TEST_F(ShortageFeedRestartTest, SubscriberResumesWithoutGapOrRepeatAcrossRestarts) {
  auto suite = StartFaultSuite();
  ASSERT_TRUE(suite.ok()) << suite.status();
  auto task_force = (*suite)->CreateKey("task-force", "task_force");
  ASSERT_TRUE(task_force.ok()) << task_force.status();
  auto forum = (*suite)->CreateKey("forum-member", "forum_member");
  ASSERT_TRUE(forum.ok()) << forum.status();

  auto stub = sv1::Shortage::NewStub((*suite)->GatewayChannel());
  sv1::ShortageRecord shortage;
  {
    grpc::ClientContext ctx;
    Authorize(ctx, *task_force);
    grpc::Status s = stub->AnnounceShortage(&ctx, medkoord::testing::PeginterferonShortage("announce-pegasys"), &shortage);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  FeedSubscriber subscriber((*suite)->GatewayChannel(), *forum);
  subscriber.Start();
  PositionWriter writer((*suite)->GatewayChannel(), *task_force, shortage.name());
  writer.Start();
  auto state = [&] {
    return absl::StrCat("subscriber at ", subscriber.last(), " after ", subscriber.streams(), " streams (ends: ",
                        absl::StrJoin(subscriber.stream_ends(), " | "), "); positions acknowledged ",
                        writer.acknowledged().size(), "; writer failures: ", absl::StrJoin(writer.failures(), " | "),
                        "; logs in ", (*suite)->dir());
  };
  ASSERT_TRUE(subscriber.AwaitSequence(10, absl::Seconds(60))) << state();

  // A graceful restart (a rolling deploy), then a crash, each while the
  // subscriber is attached and positions keep coming.
  (*suite)->Stop("shortage");
  absl::Status restarted = (*suite)->Restart("shortage");
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(subscriber.AwaitSequence(subscriber.last() + 10, absl::Seconds(60))) << state();

  (*suite)->Kill("shortage");
  restarted = (*suite)->Restart("shortage");
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(subscriber.AwaitSequence(subscriber.last() + 10, absl::Seconds(60))) << state();

  writer.Stop();
  EXPECT_TRUE(writer.failures().empty()) << absl::StrJoin(writer.failures(), "\n");
  const long head = QueryLong((*suite)->db_url("shortage"), "SELECT last_sequence FROM event_counter");
  ASSERT_GT(head, 0);
  ASSERT_TRUE(subscriber.AwaitSequence(head, absl::Seconds(30))) << "head " << head << ": " << state();
  subscriber.Stop();

  // Over all streams: 1..head, each once, in order.
  const std::vector<sv1::ShortageEvent> events = subscriber.events();
  std::vector<int64_t> got;
  std::vector<int64_t> want;
  for (const auto& e : events) got.push_back(e.sequence());
  for (int64_t s = 1; s <= head; ++s) want.push_back(s);
  EXPECT_EQ(got, want);
  EXPECT_EQ(QueryLong((*suite)->db_url("shortage"), "SELECT count(*) FROM events"), head);

  // Every acknowledged position arrived exactly once; a retried report made
  // no second event.
  std::map<std::string, int> position_events;
  for (const auto& e : events) {
    if (e.type() == sv1::EVENT_TYPE_POSITION_REPORTED) ++position_events[e.position().name()];
  }
  const std::vector<std::string> acknowledged = writer.acknowledged();
  EXPECT_EQ(position_events.size(), acknowledged.size());
  for (const std::string& name : acknowledged) EXPECT_EQ(position_events[name], 1) << name;

  // Both restarts ended the stream the subscriber had, and it came back.
  EXPECT_GE(subscriber.streams(), 3);
  std::vector<std::string> gaps;
  for (absl::Duration d : subscriber.resume_gaps()) gaps.push_back(absl::StrCat(absl::ToInt64Milliseconds(d), "ms"));
  // How the streams ended, tallied (reconnects while the service was down repeat).
  std::map<std::string, int> ends;
  for (const std::string& e : subscriber.stream_ends()) ++ends[e.substr(0, 60)];
  std::vector<std::string> tally;
  for (const auto& [e, n] : ends) tally.push_back(absl::StrCat(n, "x \"", e, "\""));
  std::printf("[ figures ] feed across 2 shortage restarts: %zu events (head %ld), %zu positions acknowledged "
              "(%d retried), %d streams; resumed (stream end to next event): %s; stream ends: %s\n",
              events.size(), head, acknowledged.size(), writer.retried(), subscriber.streams(),
              absl::StrJoin(gaps, ", ").c_str(), absl::StrJoin(tally, ", ").c_str());
}

}  // namespace
}  // namespace medkoord::e2e::faults
