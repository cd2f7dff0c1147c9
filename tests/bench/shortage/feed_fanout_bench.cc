// Fan-out of the shortage live feed: N concurrent WatchShortages subscribers
// spread over two service replicas on one private durable PostgreSQL
// cluster, one change every interval, measuring for every delivery the time
// from the change (its ChangeStamp, taken in the writing transaction before
// COMMIT, so the figure includes the commit itself) to its arrival at the
// subscriber. Subscribers use the gRPC callback client API, so 1,000 of them
// need no thread each, like the server side.
//
//   shortage_feed_bench [subscribers=1000] [changes=300] [interval_ms=100]

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/integration/shortage/shortage_test_env.h"

namespace medkoord::shortage::testing {
namespace {

struct Samples {
  absl::Mutex mu;
  std::vector<double> change_to_delivery_ms ABSL_GUARDED_BY(mu);
  // (change number, arrival) of every position event, matched afterwards
  // with the time the writer saw its commit acknowledged.
  std::vector<std::pair<int64_t, absl::Time>> arrivals ABSL_GUARDED_BY(mu);
  std::atomic<int64_t> delivered{0};
  std::atomic<int> caught_up{0};
  std::atomic<int> ended{0};
  // Deliveries whose sequence was not the previous one + 1 on that stream.
  std::atomic<int64_t> out_of_order{0};
};

class Subscriber final : public grpc::ClientReadReactor<v1::WatchShortagesResponse> {
 public:
  Subscriber(v1::Shortage::Stub& stub, Samples& samples) : samples_(samples) {
    context_ = Signed(TaskForce(), "WatchShortages", absl::Hours(1));
    stub.async()->WatchShortages(context_.get(), &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const absl::Time now = absl::Now();
    if (response_.has_caught_up()) {
      samples_.caught_up.fetch_add(1);
      last_sequence_ = response_.caught_up().head_sequence();
    } else {
      if (response_.event().sequence() != last_sequence_ + 1) samples_.out_of_order.fetch_add(1);
      last_sequence_ = response_.event().sequence();
      const auto& t = response_.event().changed().time();
      const absl::Time changed = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
      {
        absl::MutexLock lock(&samples_.mu);
        samples_.change_to_delivery_ms.push_back(absl::ToDoubleMilliseconds(now - changed));
        if (response_.event().has_position()) {
          samples_.arrivals.emplace_back(response_.event().position().stock_packs(), now);
        }
      }
      samples_.delivered.fetch_add(1);
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    samples_.ended.fetch_add(1);
  }
  void Cancel() { context_->TryCancel(); }
  const grpc::Status& status() const { return status_; }

 private:
  Samples& samples_;
  std::unique_ptr<grpc::ClientContext> context_;
  v1::WatchShortagesRequest request_;
  v1::WatchShortagesResponse response_;
  grpc::Status status_;
  int64_t last_sequence_ = 0;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

int Run(int subscribers, int changes, int interval_ms) {
  auto cluster = medkoord::testing::PostgresCluster::StartPrivate();
  if (!cluster.ok()) {
    std::fprintf(stderr, "cannot start PostgreSQL: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  auto url = (*cluster)->CreateDatabase("shortage_bench");
  if (!url.ok()) return 1;
  // Two replicas, each with its own pool, feed (LISTEN connection) and server.
  auto a = Instance::Start(*url, *SystemClock(), EventHub::Options{});
  auto b = Instance::Start(*url, *SystemClock(), EventHub::Options{});
  Instance* replicas[] = {a.get(), b.get()};

  // Several channels per replica, as many clients would have.
  constexpr int kChannelsPerReplica = 8;
  std::vector<std::unique_ptr<v1::Shortage::Stub>> stubs;
  for (int r = 0; r < 2; ++r) {
    for (int c = 0; c < kChannelsPerReplica; ++c) {
      grpc::ChannelArguments args;
      args.SetInt("medkoord.bench.channel", r * 100 + c);  // distinct connections
      auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", replicas[r]->port()),
                                               grpc::InsecureChannelCredentials(), args);
      stubs.push_back(v1::Shortage::NewStub(channel));
    }
  }
  Samples samples;
  std::vector<std::unique_ptr<Subscriber>> subs;
  for (int i = 0; i < subscribers; ++i) {
    subs.push_back(std::make_unique<Subscriber>(*stubs[i % stubs.size()], samples));
  }
  const absl::Time subscribe_deadline = absl::Now() + absl::Seconds(120);
  while (samples.caught_up.load() < subscribers && absl::Now() < subscribe_deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::fprintf(stderr, "%d/%d subscribers live\n", samples.caught_up.load(), subscribers);

  auto announce = Signed(TaskForce(), "AnnounceShortage");
  v1::ShortageRecord shortage;
  if (!a->stub().AnnounceShortage(announce.get(), Peginterferon(), &shortage).ok()) return 1;
  int failed_writes = 0;
  std::vector<absl::Time> acknowledged(changes, absl::InfiniteFuture());
  const absl::Time start = absl::Now();
  for (int i = 0; i < changes; ++i) {
    const absl::Time due = start + absl::Milliseconds(static_cast<int64_t>(interval_ms) * (i + 1));
    if (due > absl::Now()) absl::SleepFor(due - absl::Now());
    Instance& writer = *replicas[i % 2];
    auto context = Signed(TaskForce(), "ReportPosition");
    v1::RegionalPosition p;
    if (!writer.stub()
             .ReportPosition(context.get(),
                             Position(shortage.name(), common::v1::REGION_SYDDANMARK, i, 25, 95), &p)
             .ok()) {
      ++failed_writes;
    } else {
      acknowledged[i] = absl::Now();
    }
  }
  const int64_t expected = static_cast<int64_t>(subscribers) * (changes + 1);
  const absl::Time drain_deadline = absl::Now() + absl::Seconds(60);
  while (samples.delivered.load() < expected && absl::Now() < drain_deadline) absl::SleepFor(absl::Milliseconds(20));

  std::vector<double> latencies;
  std::vector<double> after_ack;  // negative: delivered before the writer heard back
  {
    absl::MutexLock lock(&samples.mu);
    latencies = samples.change_to_delivery_ms;
    for (const auto& [change, arrived] : samples.arrivals) {
      if (change >= 0 && change < changes && acknowledged[change] != absl::InfiniteFuture()) {
        after_ack.push_back(absl::ToDoubleMilliseconds(arrived - acknowledged[change]));
      }
    }
  }
  const double ack_p50 = Percentile(after_ack, 0.50);
  const double ack_p99 = Percentile(after_ack, 0.99);
  const double p50 = Percentile(latencies, 0.50);
  const double p90 = Percentile(latencies, 0.90);
  const double p99 = Percentile(latencies, 0.99);
  const double max = latencies.empty() ? 0 : latencies.back();
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 0) load[0] = -1;
  std::printf(
      "{\"subscribers\":%d,\"replicas\":2,\"changes\":%d,\"interval_ms\":%d,\"delivered\":%lld,"
      "\"expected\":%lld,\"out_of_order\":%lld,\"failed_writes\":%d,\"p50_ms\":%.2f,\"p90_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
      "\"ack_to_delivery_p50_ms\":%.2f,\"ack_to_delivery_p99_ms\":%.2f,\"loadavg1\":%.1f}\n",
      subscribers, changes, interval_ms, static_cast<long long>(samples.delivered.load()),
      static_cast<long long>(expected),
      static_cast<long long>(samples.out_of_order.load()), failed_writes, p50, p90, p99, max, ack_p50, ack_p99, load[0]);
  for (auto& s : subs) s->Cancel();
  const absl::Time end_deadline = absl::Now() + absl::Seconds(30);
  while (samples.ended.load() < subscribers && absl::Now() < end_deadline) absl::SleepFor(absl::Milliseconds(20));
  subs.clear();
  return samples.delivered.load() == expected && samples.out_of_order.load() == 0 ? 0 : 3;
}

}  // namespace
}  // namespace medkoord::shortage::testing

int main(int argc, char** argv) {
  const int subscribers = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int changes = argc > 2 ? std::atoi(argv[2]) : 300;
  const int interval_ms = argc > 3 ? std::atoi(argv[3]) : 100;
  return medkoord::shortage::testing::Run(subscribers, changes, interval_ms);
}
