// WatchShortages against a real PostgreSQL: commit-ordered, gap-free
// sequences; resume after a disconnect; replay from the log; two replicas;
// a slow subscriber dropped without stalling others; a PostgreSQL restart.

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "tests/integration/shortage/shortage_test_env.h"

namespace medkoord::shortage::testing {
namespace {

using ::testing::HasSubstr;

struct Watch {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReader<v1::WatchShortagesResponse>> reader;
};

Watch Open(Instance& instance, const Principal& principal, std::optional<int64_t> after) {
  Watch w;
  w.context = Signed(principal, "WatchShortages", absl::Seconds(60));
  v1::WatchShortagesRequest request;
  if (after) request.set_after_sequence(*after);
  w.reader = instance.stub().WatchShortages(w.context.get(), request);
  return w;
}

// Reads up to the CaughtUp marker, returning the events before it.
std::vector<v1::ShortageEvent> ReadToCaughtUp(Watch& w, int64_t* head) {
  std::vector<v1::ShortageEvent> events;
  v1::WatchShortagesResponse response;
  while (w.reader->Read(&response)) {
    if (response.has_caught_up()) {
      *head = response.caught_up().head_sequence();
      return events;
    }
    events.push_back(response.event());
  }
  ADD_FAILURE() << "stream ended before CaughtUp: " << w.reader->Finish().error_message();
  return events;
}

std::vector<int64_t> Sequences(const std::vector<v1::ShortageEvent>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.sequence());
  return out;
}

std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

std::string AnnounceVia(Instance& instance) {
  auto context = Signed(TaskForce(), "AnnounceShortage");
  v1::ShortageRecord s;
  grpc::Status status = instance.stub().AnnounceShortage(context.get(), Peginterferon(), &s);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return s.name();
}

grpc::Status ReportVia(Instance& instance, const std::string& name, int64_t stock) {
  auto context = Signed(TaskForce(), "ReportPosition");
  v1::RegionalPosition p;
  return instance.stub().ReportPosition(context.get(), Position(name, common::v1::REGION_SYDDANMARK, stock, 10, 40),
                                        &p);
}

class ShortageFeedTest : public medkoord::testing::PostgresTest {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto url = cluster().CreateDatabase("shortage_feed");
    ASSERT_TRUE(url.ok()) << url.status();
    url_ = *url;
  }
  void TearDown() override {
    instances_.clear();
    if (!url_.empty()) (void)cluster().DropDatabase(url_);
  }

  Instance& StartInstance(EventHub::Options feed = Instance::FastFeed()) {
    instances_.push_back(Instance::Start(url_, clock_, feed));
    return *instances_.back();
  }

  static std::string Announce(Instance& instance) { return AnnounceVia(instance); }
  static grpc::Status Report(Instance& instance, const std::string& name, int64_t stock) {
    return ReportVia(instance, name, stock);
  }

  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2024, 6, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::string url_;
  std::vector<std::unique_ptr<Instance>> instances_;
};

TEST_F(ShortageFeedTest, ResumeAfterDisconnectLosesNothingAndKeepsOrder) {
  Instance& instance = StartInstance();
  const std::string name = Announce(instance);
  // CaughtUp reports what this replica has read; let it read the announcement.
  ASSERT_TRUE(instance.hub().AwaitHead(1, absl::Seconds(30)));

  Watch first = Open(instance, ForumMember(), 0);
  int64_t head = -1;
  std::vector<v1::ShortageEvent> events = ReadToCaughtUp(first, &head);
  EXPECT_EQ(head, 1);
  ASSERT_EQ(Sequences(events), Range(1, 1));
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_SHORTAGE_ANNOUNCED);
  EXPECT_EQ(events[0].shortage_snapshot().drug().atc_code(), "L03AB11");

  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Report(instance, name, 100 - i).ok());
  ASSERT_TRUE(ReadEvents(*first.reader, 6, &events));
  EXPECT_EQ(Sequences(events), Range(1, 6));
  EXPECT_EQ(events[5].type(), v1::EVENT_TYPE_POSITION_REPORTED);
  EXPECT_EQ(events[5].position().stock_packs(), 96);
  first.context->TryCancel();
  EXPECT_EQ(first.reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // Changes while the client is away.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Report(instance, name, 50 - i).ok());
  ASSERT_TRUE(instance.hub().AwaitHead(10, absl::Seconds(30)));

  Watch second = Open(instance, ForumMember(), events.back().sequence());
  std::vector<v1::ShortageEvent> missed = ReadToCaughtUp(second, &head);
  EXPECT_EQ(Sequences(missed), Range(7, 10));
  EXPECT_EQ(head, 10);
  EXPECT_EQ(missed.back().position().stock_packs(), 47);
  ASSERT_TRUE(Report(instance, name, 7).ok());
  std::vector<v1::ShortageEvent> live;
  ASSERT_TRUE(ReadEvents(*second.reader, 1, &live));
  EXPECT_EQ(live[0].sequence(), 11);
}

TEST_F(ShortageFeedTest, ReplaysFromTheLogWhenTheRingNoLongerHoldsIt) {
  EventHub::Options small = Instance::FastFeed();
  small.ring_capacity = 4;
  small.max_lag = 4;
  small.replay_batch = 3;  // several pages
  Instance& instance = StartInstance(small);
  const std::string name = Announce(instance);
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(Report(instance, name, i).ok());
  ASSERT_TRUE(instance.hub().AwaitHead(12, absl::Seconds(30)));

  Watch w = Open(instance, TaskForce(), 0);
  int64_t head = -1;
  std::vector<v1::ShortageEvent> events = ReadToCaughtUp(w, &head);
  EXPECT_EQ(Sequences(events), Range(1, 12));
  EXPECT_EQ(head, 12);
}

TEST_F(ShortageFeedTest, FiltersAndRegionScope) {
  Instance& instance = StartInstance();
  const std::string name = Announce(instance);
  ASSERT_TRUE(instance.hub().AwaitHead(1, absl::Seconds(30)));
  Watch region = Open(instance, RegionCaller(common::v1::REGION_HOVEDSTADEN), std::nullopt);
  int64_t head = -1;
  ReadToCaughtUp(region, &head);
  // Syddanmark's position is not Hovedstaden's business; the guidance is.
  ASSERT_TRUE(Report(instance, name, 5).ok());
  v1::PublishGuidanceRequest publish;
  publish.set_parent(name);
  publish.mutable_guidance()->set_summary("Prioritise pregnant patients");
  auto context = Signed(TaskForce(), "PublishGuidance");
  v1::Guidance guidance;
  ASSERT_TRUE(instance.stub().PublishGuidance(context.get(), publish, &guidance).ok());
  std::vector<v1::ShortageEvent> events;
  ASSERT_TRUE(ReadEvents(*region.reader, 1, &events));
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_GUIDANCE_PUBLISHED);
  EXPECT_EQ(events[0].sequence(), 3);
  EXPECT_EQ(events[0].guidance().summary(), "Prioritise pregnant patients");

  auto bad = Signed(ForumMember(), "WatchShortages");
  v1::WatchShortagesRequest request;
  request.set_after_sequence(-3);
  request.set_atc_prefix("ZZ");
  auto reader = instance.stub().WatchShortages(bad.get(), request);
  v1::WatchShortagesResponse response;
  EXPECT_FALSE(reader->Read(&response));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ViolatedFields(status), ::testing::UnorderedElementsAre("after_sequence", "atc_prefix"));
}

TEST_F(ShortageFeedTest, TwoReplicasOnOneDatabaseBothDeliverEveryEventInCommitOrder) {
  Instance& a = StartInstance();
  Instance& b = StartInstance();
  Watch on_a = Open(a, TaskForce(), std::nullopt);
  Watch on_b = Open(b, TaskForce(), std::nullopt);
  int64_t head = -1;
  ReadToCaughtUp(on_a, &head);
  ReadToCaughtUp(on_b, &head);
  EXPECT_EQ(head, 0);

  const std::string name = Announce(a);
  // Concurrent writers on both replicas: numbers must still come out gap-free
  // and in commit order on every subscriber.
  constexpr int kWriters = 6;
  constexpr int kEach = 8;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      Instance& target = w % 2 == 0 ? a : b;
      for (int i = 0; i < kEach; ++i) EXPECT_TRUE(Report(target, name, w * 100 + i).ok());
    });
  }
  for (std::thread& t : writers) t.join();
  constexpr int kTotal = 1 + kWriters * kEach;
  std::vector<v1::ShortageEvent> from_a;
  std::vector<v1::ShortageEvent> from_b;
  ASSERT_TRUE(ReadEvents(*on_a.reader, kTotal, &from_a));
  ASSERT_TRUE(ReadEvents(*on_b.reader, kTotal, &from_b));
  EXPECT_EQ(Sequences(from_a), Range(1, kTotal));
  EXPECT_EQ(Sequences(from_b), Range(1, kTotal));
  for (int i = 0; i < kTotal; ++i) {
    EXPECT_EQ(from_a[i].SerializeAsString(), from_b[i].SerializeAsString()) << "event " << i + 1;
  }
  // Each writer's own reports appear in the order it made them.
  std::map<int64_t, int64_t> last_stock_of_writer;
  for (const auto& e : from_a) {
    if (e.type() != v1::EVENT_TYPE_POSITION_REPORTED) continue;
    const int64_t writer = e.position().stock_packs() / 100;
    auto it = last_stock_of_writer.find(writer);
    if (it != last_stock_of_writer.end()) {
      EXPECT_GT(e.position().stock_packs(), it->second);
    }
    last_stock_of_writer[writer] = e.position().stock_packs();
  }
}

TEST_F(ShortageFeedTest, ReplicaGoingAwayLosesNothingForAClientResumingOnAnother) {
  auto doomed = Instance::Start(url_, clock_, Instance::FastFeed());
  Instance& survivor = StartInstance();
  const std::string name = Announce(survivor);
  ASSERT_TRUE(doomed->hub().AwaitHead(1, absl::Seconds(30)));
  Watch w = Open(*doomed, TaskForce(), 0);
  int64_t head = -1;
  std::vector<v1::ShortageEvent> events = ReadToCaughtUp(w, &head);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Report(survivor, name, i).ok());
  ASSERT_TRUE(ReadEvents(*w.reader, 4, &events));

  doomed.reset();  // the replica goes away; its streams end
  v1::WatchShortagesResponse response;
  while (w.reader->Read(&response)) {
    if (response.has_event()) events.push_back(response.event());
  }
  const grpc::Status ended = w.reader->Finish();
  EXPECT_FALSE(ended.ok());

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Report(survivor, name, 10 + i).ok());
  Watch resumed = Open(survivor, TaskForce(), events.back().sequence());
  ASSERT_TRUE(ReadEvents(*resumed.reader, 7, &events));
  EXPECT_EQ(Sequences(events), Range(1, 7));
}

// A sink that accepts one message and never finishes sending it: a client
// that stopped reading.
class StuckSink final : public FeedSink {
 public:
  void Send(const v1::WatchShortagesResponse*) override { ++sends; }
  void Close(const absl::Status& status) override { closed = status; }
  int sends = 0;
  std::optional<absl::Status> closed;
};

TEST_F(ShortageFeedTest, SlowSubscriberIsDroppedAndDoesNotStallOthers) {
  EventHub::Options feed = Instance::FastFeed();
  feed.max_lag = 5;
  feed.ring_capacity = 16;
  Instance& instance = StartInstance(feed);
  const std::string name = Announce(instance);
  ASSERT_TRUE(instance.hub().AwaitHead(1, absl::Seconds(30)));

  Watch healthy = Open(instance, TaskForce(), std::nullopt);
  int64_t head = -1;
  ReadToCaughtUp(healthy, &head);
  StuckSink sink;
  auto stuck = std::make_shared<Subscription>(instance.hub(), FeedFilter{}, head, &sink);
  stuck->Start();
  EXPECT_EQ(sink.sends, 1) << "the CaughtUp marker, never acknowledged";

  // The healthy client reads each change before the next is made; the
  // stuck one falls further behind with each.
  std::vector<v1::ShortageEvent> events;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Report(instance, name, i).ok());
    ASSERT_TRUE(ReadEvents(*healthy.reader, i + 1, &events)) << healthy.reader->Finish().error_message();
  }
  EXPECT_EQ(Sequences(events), Range(2, 11));

  ASSERT_TRUE(stuck->AwaitClosing(absl::Seconds(30)));
  EXPECT_FALSE(sink.closed.has_value()) << "never closed while a send is pending";
  stuck->OnSendDone(true);
  ASSERT_TRUE(sink.closed.has_value());
  EXPECT_EQ(sink.closed->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(sink.closed->message(), HasSubstr("resume with after_sequence=1"));
  EXPECT_EQ(sink.sends, 1);

  // The healthy subscriber keeps going.
  ASSERT_TRUE(Report(instance, name, 99).ok());
  ASSERT_TRUE(ReadEvents(*healthy.reader, 11, &events));
  EXPECT_EQ(events.back().sequence(), 12);
}

TEST_F(ShortageFeedTest, ShutdownEndsOpenStreamsWithTheirResumePointAndRefusesNewOnes) {
  Instance& instance = StartInstance();
  const std::string name = Announce(instance);
  ASSERT_TRUE(instance.hub().AwaitHead(1, absl::Seconds(30)));
  Watch all = Open(instance, TaskForce(), 0);
  // Filtered: its resume point still moves past the events it skips.
  auto filtered_context = Signed(TaskForce(), "WatchShortages", absl::Seconds(60));
  v1::WatchShortagesRequest filtered_request;
  filtered_request.set_after_sequence(0);
  filtered_request.add_event_types(v1::EVENT_TYPE_SHORTAGE_ANNOUNCED);
  auto filtered = instance.stub().WatchShortages(filtered_context.get(), filtered_request);
  int64_t head = -1;
  ReadToCaughtUp(all, &head);
  std::vector<v1::ShortageEvent> events;
  ASSERT_TRUE(ReadEvents(*filtered, 1, &events));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Report(instance, name, i).ok());
  std::vector<v1::ShortageEvent> live;
  ASSERT_TRUE(ReadEvents(*all.reader, 3, &live));
  ASSERT_TRUE(instance.hub().AwaitHead(4, absl::Seconds(30)));

  instance.hub().EndStreams();

  v1::WatchShortagesResponse response;
  EXPECT_FALSE(all.reader->Read(&response));
  grpc::Status ended = all.reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(ended.error_message(), HasSubstr("resume with after_sequence=4"));
  // The filtered stream saw only the announcement, but may resume after 4:
  // the hub had passed events 2-4 for it (it saw CaughtUp at 1, then they
  // arrived; its cursor moves as the hub hands them over).
  while (filtered->Read(&response)) {
  }
  grpc::Status filtered_ended = filtered->Finish();
  EXPECT_EQ(filtered_ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(filtered_ended.error_message(), HasSubstr("resume with after_sequence="));

  Watch refused = Open(instance, TaskForce(), 2);
  EXPECT_FALSE(refused.reader->Read(&response));
  grpc::Status status = refused.reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("resume with after_sequence=2"));
}

// Retention: with a fake clock, events older than the retention go, but
// never the last ring-full; a client resuming from before the oldest kept
// is told so (OUT_OF_RANGE naming after_sequence), one resuming from within
// the log gets everything, one resuming from beyond the log is refused.
TEST_F(ShortageFeedTest, PrunedLogRefusesResumeFromBeforeItsOldestEvent) {
  EventHub::Options small = Instance::FastFeed();
  small.ring_capacity = 4;
  small.max_lag = 4;
  EventPruner::Options retention;
  retention.retention = absl::Hours(90 * 24);
  retention.keep_last = 1;  // raised to the ring capacity by BuildShortageService
  Instance& instance = *instances_.emplace_back(Instance::Start(url_, clock_, small, retention));
  // The background pass at start must be over before the clock moves: the
  // passes below are the test's own.
  ASSERT_TRUE(instance.pruner().AwaitPasses(1, absl::Seconds(30)));
  const std::string name = Announce(instance);
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Report(instance, name, i).ok());  // 2..10, all at day 0
  clock_.Advance(absl::Hours(91 * 24));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Report(instance, name, 20 + i).ok());  // 11..12 at day 91
  ASSERT_TRUE(instance.hub().AwaitHead(12, absl::Seconds(30)));

  // 1..10 are past the retention, but 9 and 10 are among the last four.
  absl::StatusOr<int64_t> pruned = instance.pruner().PruneOnce();
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 8);
  ShortageStore store(instance.pool());
  EXPECT_EQ(*store.OldestSequence(), 9);
  clock_.Advance(absl::Hours(365 * 24));
  EXPECT_EQ(*instance.pruner().PruneOnce(), 0) << "the last ring-full of events is always kept";
  EXPECT_EQ(*store.OldestSequence(), 9);

  for (int64_t after : {0, 3, 7}) {
    Watch gone = Open(instance, TaskForce(), after);
    v1::WatchShortagesResponse response;
    EXPECT_FALSE(gone.reader->Read(&response)) << "no event before the refusal, from " << after;
    grpc::Status status = gone.reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << after;
    EXPECT_THAT(status.error_message(), HasSubstr(absl::StrCat("after_sequence=", after)));
    EXPECT_THAT(status.error_message(), HasSubstr("the oldest event kept is 9"));
    EXPECT_THAT(ViolatedFields(status), ::testing::ElementsAre("after_sequence"));
  }

  Watch kept = Open(instance, TaskForce(), 8);
  int64_t head = -1;
  EXPECT_EQ(Sequences(ReadToCaughtUp(kept, &head)), Range(9, 12));
  EXPECT_EQ(head, 12);

  // A number never given out (a restored database): refused, not awaited.
  Watch ahead = Open(instance, TaskForce(), 40);
  v1::WatchShortagesResponse response;
  EXPECT_FALSE(ahead.reader->Read(&response));
  grpc::Status status = ahead.reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(status.error_message(), HasSubstr("beyond the newest event (12)"));
  EXPECT_THAT(ViolatedFields(status), ::testing::ElementsAre("after_sequence"));
}

// Replicas' clocks may disagree, so created_at is not monotonic in the
// sequence. Pruning stops at the first event it must keep: what remains is
// always one contiguous run, never a log with holes in the middle.
TEST_F(ShortageFeedTest, PruningRemovesOnlyAPrefixWhenClocksDisagree) {
  EventHub::Options small = Instance::FastFeed();
  small.ring_capacity = 2;
  small.max_lag = 2;
  EventPruner::Options retention;
  retention.retention = absl::Hours(24);
  Instance& instance = *instances_.emplace_back(Instance::Start(url_, clock_, small, retention));
  ASSERT_TRUE(instance.pruner().AwaitPasses(1, absl::Seconds(30)));  // the one at start, before the clock moves
  const absl::Time start = clock_.Now();
  const std::string name = Announce(instance);         // 1 at day 0
  ASSERT_TRUE(Report(instance, name, 1).ok());         // 2 at day 0
  clock_.Set(start + absl::Hours(10 * 24));
  ASSERT_TRUE(Report(instance, name, 2).ok());         // 3 at day 10 (a clock ahead)
  clock_.Set(start);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Report(instance, name, 3 + i).ok());  // 4..8 at day 0
  clock_.Set(start + absl::Hours(5 * 24));

  EXPECT_EQ(*instance.pruner().PruneOnce(), 2);
  ShortageStore store(instance.pool());
  EXPECT_EQ(*store.OldestSequence(), 3);
  auto rest = store.ReadEventsAfter(0, 100);
  ASSERT_TRUE(rest.ok()) << rest.status();
  std::vector<int64_t> kept;
  for (const StoredEvent& e : *rest) kept.push_back(e.sequence);
  EXPECT_EQ(kept, Range(3, 8));
}

TEST_F(ShortageFeedTest, BackgroundPruneRunsOnItsIntervalAndInfiniteRetentionKeepsEverything) {
  EventHub::Options small = Instance::FastFeed();
  small.ring_capacity = 2;
  small.max_lag = 2;
  EventPruner::Options retention;
  retention.retention = absl::Hours(24);
  retention.interval = absl::Milliseconds(20);
  Instance& instance = *instances_.emplace_back(Instance::Start(url_, clock_, small, retention));
  EventPruner::Options forever = retention;
  forever.retention = absl::InfiniteDuration();
  Instance& keeper = *instances_.emplace_back(Instance::Start(url_, clock_, small, forever));
  EXPECT_EQ(*keeper.pruner().PruneOnce(), 0);

  const std::string name = Announce(instance);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Report(instance, name, i).ok());  // 1..6
  ShortageStore store(instance.pool());
  clock_.Advance(absl::Hours(25));
  // Passes are counted after they finish: two more means one started after
  // the clock moved.
  ASSERT_TRUE(instance.pruner().AwaitPasses(instance.pruner().passes() + 2, absl::Seconds(30)));
  EXPECT_EQ(*store.OldestSequence(), 5);
  EXPECT_EQ(*keeper.pruner().PruneOnce(), 0);
}

// A replica cut off from the database while another pruned the log comes
// back to find its next number gone: it moves past the hole instead of
// waiting for it forever, its lagging subscriber is told to resume, and the
// resume is refused with the oldest event kept.
TEST_F(ShortageFeedTest, ReplicaBehindAPrunedLogMovesOnAndTellsItsSubscribers) {
  Instance& instance = StartInstance();
  Watch lagging = Open(instance, TaskForce(), std::nullopt);
  int64_t head = -1;
  ReadToCaughtUp(lagging, &head);
  ASSERT_EQ(head, 0);
  {
    // What the database looks like after events 1..5 were written and pruned
    // while this replica did not read: the counter at 8, events 6..8 kept.
    pqxx::connection connection(url_);
    pqxx::work tx(connection);
    for (int64_t sequence = 6; sequence <= 8; ++sequence) {
      v1::ShortageEvent event;
      event.set_sequence(sequence);
      event.set_type(v1::EVENT_TYPE_SHORTAGE_UPDATED);
      event.set_shortage("shortages/S-2024-0001");
      const std::string payload = event.SerializeAsString();
      tx.exec_params("INSERT INTO events (sequence, type, shortage_id, atc_code, region, payload, created_at) "
                     "VALUES ($1, $2, 'S-2024-0001', 'L03AB11', 0, $3, now())",
                     sequence, static_cast<int>(event.type()), pqxx::binarystring(payload.data(), payload.size()));
    }
    tx.exec("UPDATE event_counter SET last_sequence = 8");
    tx.exec("SELECT pg_notify('shortage_events', '8')");
    tx.commit();
  }
  ASSERT_TRUE(instance.hub().AwaitHead(8, absl::Seconds(30))) << "the feed waits for a number that is gone";

  v1::WatchShortagesResponse response;
  EXPECT_FALSE(lagging.reader->Read(&response));
  grpc::Status dropped = lagging.reader->Finish();
  EXPECT_EQ(dropped.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(dropped.error_message(), HasSubstr("resume with after_sequence=0"));
  Watch resumed = Open(instance, TaskForce(), 0);
  EXPECT_FALSE(resumed.reader->Read(&response));
  grpc::Status refused = resumed.reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(refused.error_message(), HasSubstr("the oldest event kept is 6"));

  // Live from the new head on.
  Watch fresh = Open(instance, TaskForce(), 5);
  EXPECT_EQ(Sequences(ReadToCaughtUp(fresh, &head)), Range(6, 8));
  EXPECT_EQ(head, 8);
  const std::string name = Announce(instance);
  std::vector<v1::ShortageEvent> live;
  ASSERT_TRUE(ReadEvents(*fresh.reader, 1, &live));
  EXPECT_EQ(live[0].sequence(), 9);
  EXPECT_EQ(live[0].shortage(), name);
}

class ShortageRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!medkoord::testing::PostgresCluster::BinariesAvailable()) GTEST_SKIP() << "PostgreSQL is not installed";
    auto cluster = medkoord::testing::PostgresCluster::StartPrivate();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    auto url = cluster_->CreateDatabase("shortage_restart");
    ASSERT_TRUE(url.ok()) << url.status();
    instance_ = Instance::Start(*url, clock_);
  }
  void TearDown() override {
    instance_.reset();
    cluster_.reset();
  }

  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2024, 6, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::unique_ptr<medkoord::testing::PostgresCluster> cluster_;
  std::unique_ptr<Instance> instance_;
};

TEST_F(ShortageRestartTest, PostgresRestartLosesNoEventForAResumingClient) {
  const std::string name = AnnounceVia(*instance_);
  ASSERT_TRUE(instance_->hub().AwaitHead(1, absl::Seconds(30)));
  Watch resuming = Open(*instance_, TaskForce(), 0);
  Watch staying = Open(*instance_, TaskForce(), 0);
  int64_t head = -1;
  ReadToCaughtUp(resuming, &head);
  ReadToCaughtUp(staying, &head);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ReportVia(*instance_, name, i).ok());
  std::vector<v1::ShortageEvent> before;
  ASSERT_TRUE(ReadEvents(*resuming.reader, 3, &before));
  EXPECT_EQ(Sequences(before), Range(2, 4));
  resuming.context->TryCancel();
  resuming.reader->Finish();

  ASSERT_TRUE(cluster_->Restart().ok());

  // The pool replaces broken connections; a write may need a second try.
  for (int i = 0; i < 3; ++i) {
    grpc::Status status;
    for (int attempt = 0; attempt < 20; ++attempt) {
      status = ReportVia(*instance_, name, 10 + i);
      if (status.ok()) break;  // else a connection broken by the restart
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  Watch resumed = Open(*instance_, TaskForce(), before.back().sequence());
  std::vector<v1::ShortageEvent> after;
  ASSERT_TRUE(ReadEvents(*resumed.reader, 3, &after));
  EXPECT_EQ(Sequences(after), Range(5, 7));
  EXPECT_EQ(after.back().position().stock_packs(), 12);

  // A stream that stayed open through the restart sees everything too.
  std::vector<v1::ShortageEvent> kept;
  ASSERT_TRUE(ReadEvents(*staying.reader, 6, &kept));
  EXPECT_EQ(Sequences(kept), Range(2, 7));
}

}  // namespace
}  // namespace medkoord::shortage::testing
