// common/db/outbox.h against a real PostgreSQL: events written in the
// caller's transaction, delivered in id order once each, across consumer
// outages, by one active relay per database.

#include "common/db/outbox.h"

#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/db/migrations.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/server.h"
#include "common/service_main.h"
#include "tests/unit/common/echo_service.h"
#include "tests/support/postgres_cluster.h"

namespace medkoord::db {
namespace {

using ::medkoord::testing::PostgresTest;
using ::testing::HasSubstr;

std::string OutboxDdl() {
  std::ifstream in(MEDKOORD_OUTBOX_SQL);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A consumer that is down for its first `failures` calls, then records what
// it receives.
class Consumer {
 public:
  explicit Consumer(int failures, int expect = 0) : failures_left_(failures), expect_(expect) {}

  absl::Status Deliver(const OutboxEvent& ev) {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (failures_left_ > 0) {
      --failures_left_;
      return absl::UnavailableError("consumer down");
    }
    received_.push_back(ev);
    if (expect_ > 0 && static_cast<int>(received_.size()) == expect_) all_received_.Notify();
    return absl::OkStatus();
  }
  OutboxRelay::Deliver Fn() {
    return [this](const OutboxEvent& ev) { return Deliver(ev); };
  }
  std::vector<std::string> Payloads() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const auto& ev : received_) out.push_back(ev.payload);
    return out;
  }
  std::vector<OutboxEvent> Received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  void FailNext(int n) {
    absl::MutexLock lock(&mu_);
    failures_left_ = n;
  }
  absl::Notification& all_received() { return all_received_; }

 private:
  absl::Mutex mu_;
  int failures_left_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int expect_;
  std::vector<OutboxEvent> received_ ABSL_GUARDED_BY(mu_);
  absl::Notification all_received_;
};

class OutboxTest : public PostgresTest {
 protected:
  static PoolOptions Options(int size) {
    PoolOptions options;
    options.url = db_url();
    options.size = size;
    return options;
  }

  void SetUp() override {
    PostgresTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    pool_ = std::make_unique<Pool>(Options(4));
    absl::StatusOr<int> n = Migrate(*pool_, {{1, "0001_outbox", OutboxDdl()}});
    ASSERT_TRUE(n.ok()) << n.status();
  }

  // Payloads hold bytes that text columns could not: NUL and high bytes.
  static std::string PayloadOf(int i) { return absl::StrCat("event-", i, std::string("\0\xff", 2)); }

  std::vector<std::string> Enqueue(int count) {
    std::vector<std::string> payloads;
    for (int i = 0; i < count; ++i) {
      payloads.push_back(PayloadOf(i));
      absl::Status s = pool_->Run([&](pqxx::work& tx) {
        EnqueueOutboxEvent(tx, "test.thing.happened", payloads.back());
        return absl::OkStatus();
      });
      EXPECT_TRUE(s.ok()) << s;
    }
    return payloads;
  }

  int64_t Scalar(const std::string& sql) {
    int64_t v = -1;
    EXPECT_TRUE(pool_->Run([&](pqxx::work& tx) {
                   v = tx.exec(sql)[0][0].as<int64_t>();
                   return absl::OkStatus();
                 }).ok());
    return v;
  }

  std::unique_ptr<Pool> pool_;
};

TEST_F(OutboxTest, AnEventIsWrittenOnlyWithItsTransaction) {
  std::string event_id;
  absl::Status rejected = pool_->Run([&](pqxx::work& tx) {
    EnqueueOutboxEvent(tx, "test.rejected", "x");
    return absl::FailedPreconditionError("the change was refused");
  });
  EXPECT_EQ(rejected.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox"), 0);

  ASSERT_TRUE(pool_->Run([&](pqxx::work& tx) {
                 event_id = EnqueueOutboxEvent(tx, "test.accepted", "y");
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(event_id.size(), 36u) << event_id;  // a uuid
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND attempts = 0"), 1);
}

// A trace follows the event: the row keeps the trace context of the call that
// wrote it, and the relay's delivery over an InternalChannel reaches the
// consumer's handler in that context (ARCHITECTURE.md, observability).
TEST_F(OutboxTest, TheTraceOfTheWritingCallReachesTheConsumer) {
  const std::string trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ASSERT_TRUE(pool_->Run([&](pqxx::work& tx) {
                 log::ScopedTrace scope(trace);
                 EnqueueOutboxEvent(tx, "test.traced", "a");
                 return absl::OkStatus();
               }).ok());
  Enqueue(1);  // written outside any call: no trace
  EXPECT_EQ(Scalar(absl::StrCat("SELECT count(*) FROM outbox WHERE traceparent = '", trace, "'")), 1);

  absl::Mutex mu;
  std::vector<std::string> seen;
  testing::EchoService echo(nullptr, [&] {
    absl::MutexLock lock(&mu);
    seen.push_back(log::CurrentTraceparent());
  });
  ServerOptions server_options;
  server_options.service_name = "consumer";
  auto server = Server::Start(server_options, {&echo});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = medkoord::testing::v1::Echo::NewStub(
      InternalChannel(absl::StrCat("127.0.0.1:", (*server)->port())));
  OutboxRelay relay(*pool_, [&](const OutboxEvent& ev) -> absl::Status {
    grpc::ClientContext ctx;
    medkoord::testing::v1::EchoRequest req;
    req.set_text(ev.topic);
    medkoord::testing::v1::EchoResponse resp;
    grpc::Status s = stub->Echo(&ctx, req, &resp);
    return s.ok() ? absl::OkStatus() : absl::UnavailableError(s.error_message());
  }, {.name = "outbox-trace-test"});
  absl::StatusOr<int> delivered = relay.DeliverPending();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 2);
  absl::MutexLock lock(&mu);
  EXPECT_THAT(seen, ::testing::ElementsAre(trace, ""));
}

TEST_F(OutboxTest, DeliversInOrderOnceAfterTheConsumerWasDown) {
  std::vector<std::string> payloads = Enqueue(25);
  Consumer consumer(/*failures=*/3);
  OutboxRelay relay(*pool_, consumer.Fn(), {.name = "outbox-order-test", .batch_size = 10});

  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int> n = relay.DeliverPending();
    EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable) << n.status();
    EXPECT_EQ(relay.pending(), 25);
  }
  // What an operator's alert sees while the consumer is down.
  std::string scrape = metrics::DefaultRegistry().Render();
  EXPECT_THAT(scrape, HasSubstr("medkoord_outbox_pending{relay=\"outbox-order-test\"} 25\n"));
  EXPECT_THAT(scrape, HasSubstr("medkoord_outbox_delivery_failures_total{relay=\"outbox-order-test\"} 3\n"));
  absl::StatusOr<int> n = relay.DeliverPending();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 25);
  EXPECT_EQ(consumer.Payloads(), payloads);  // all, in order, once
  EXPECT_EQ(relay.pending(), 0);
  EXPECT_EQ(relay.delivered_total(), 25);
  scrape = metrics::DefaultRegistry().Render();
  EXPECT_THAT(scrape, HasSubstr("medkoord_outbox_pending{relay=\"outbox-order-test\"} 0\n"));
  EXPECT_THAT(scrape, HasSubstr("medkoord_outbox_delivered_total{relay=\"outbox-order-test\"} 25\n"));
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
  // The first event carries the failed attempts; the others went first time.
  EXPECT_EQ(Scalar("SELECT attempts FROM outbox ORDER BY id LIMIT 1"), 4);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE attempts = 1"), 24);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL"), 0);

  std::set<std::string> ids;
  for (const auto& ev : consumer.Received()) {
    ids.insert(ev.event_id);
    EXPECT_EQ(ev.topic, "test.thing.happened");
  }
  EXPECT_EQ(ids.size(), 25u);

  absl::StatusOr<int> nothing = relay.DeliverPending();
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(*nothing, 0);
}

TEST_F(OutboxTest, AFailureMidStreamHoldsBackEverythingAfterIt) {
  std::vector<std::string> payloads = Enqueue(10);
  Consumer consumer(/*failures=*/0);
  int calls = 0;
  OutboxRelay relay(*pool_, [&](const OutboxEvent& ev) {
    if (++calls == 5) return absl::UnavailableError("consumer went down");
    return consumer.Deliver(ev);
  });
  absl::StatusOr<int> first = relay.DeliverPending();
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(consumer.Payloads(), std::vector<std::string>(payloads.begin(), payloads.begin() + 4));
  EXPECT_EQ(relay.pending(), 6);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE last_error IS NOT NULL"), 1);

  absl::StatusOr<int> rest = relay.DeliverPending();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, 6);
  EXPECT_EQ(consumer.Payloads(), payloads);
}

// A consumer's final "no" settles that one event, visibly (last_error,
// refused counter), and the events after it are delivered; a retryable error
// still holds everything back (previous test).
TEST_F(OutboxTest, ARefusedEventIsSettledWithItsReasonAndLaterEventsGoOn) {
  std::vector<std::string> payloads = Enqueue(5);
  std::vector<std::string> received;
  OutboxRelay relay(*pool_, [&](const OutboxEvent& ev) -> absl::Status {
    if (ev.payload == PayloadOf(1)) return OutboxRefused(absl::NotFoundError("no application 42"));
    received.push_back(ev.payload);
    return absl::OkStatus();
  }, {.name = "outbox-refused-test"});
  absl::StatusOr<int> delivered = relay.DeliverPending();
  ASSERT_TRUE(delivered.ok()) << delivered.status();
  EXPECT_EQ(*delivered, 4);
  EXPECT_THAT(received, ::testing::ElementsAre(PayloadOf(0), PayloadOf(2), PayloadOf(3), PayloadOf(4)));
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE last_error LIKE 'refused: NOT_FOUND: no application 42%'"), 1);
  const std::string scrape = metrics::DefaultRegistry().Render();
  EXPECT_THAT(scrape, HasSubstr("medkoord_outbox_refused_total{relay=\"outbox-refused-test\"} 1"));
  // A second pass finds nothing to do: the refusal is final.
  delivered = relay.DeliverPending();
  ASSERT_TRUE(delivered.ok());
  EXPECT_EQ(*delivered, 0);
  EXPECT_TRUE(IsOutboxRefused(OutboxRefused(absl::InvalidArgumentError("x"))));
  EXPECT_FALSE(IsOutboxRefused(absl::UnavailableError("down")));
}

TEST_F(OutboxTest, TheBackgroundRelayBacksOffAndDeliversEverything) {
  std::vector<std::string> payloads = Enqueue(30);
  Consumer consumer(/*failures=*/5, /*expect=*/30);
  OutboxRelay relay(*pool_, consumer.Fn(),
                    {.name = "outbox",
                     .poll_interval = absl::Milliseconds(20),
                     .initial_backoff = absl::Milliseconds(1),
                     .max_backoff = absl::Milliseconds(20),
                     .batch_size = 7});
  relay.Start();
  ASSERT_TRUE(consumer.all_received().WaitForNotificationWithTimeout(absl::Seconds(60)));
  relay.Stop();
  EXPECT_TRUE(relay.active() == false);
  EXPECT_EQ(consumer.Payloads(), payloads);
  EXPECT_EQ(Scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"), 0);
}

TEST_F(OutboxTest, OneRelayPerDatabaseIsActive) {
  std::vector<std::string> payloads = Enqueue(4);
  Consumer first_consumer(0);
  Consumer second_consumer(0);
  Pool other_pool(Options(2));  // as in another replica
  auto first = std::make_unique<OutboxRelay>(*pool_, first_consumer.Fn());
  OutboxRelay second(other_pool, second_consumer.Fn());

  absl::StatusOr<int> n = first->DeliverPending();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_TRUE(first->active());
  Enqueue(2);
  EXPECT_EQ(second.DeliverPending().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(second.active());
  EXPECT_TRUE(second_consumer.Payloads().empty());

  first.reset();  // the replica goes away; its lock with it
  absl::StatusOr<int> taken_over = second.DeliverPending();
  ASSERT_TRUE(taken_over.ok()) << taken_over.status();
  EXPECT_EQ(*taken_over, 2);
  EXPECT_TRUE(second.active());
  EXPECT_EQ(first_consumer.Payloads(), payloads);
  EXPECT_EQ(second_consumer.Payloads(), (std::vector<std::string>{PayloadOf(0), PayloadOf(1)}));
}

}  // namespace
}  // namespace medkoord::db
