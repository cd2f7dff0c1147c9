#pragma once
// An in-process shortage service on port 0 against a real PostgreSQL
// database, with real stubs and test-signed principals.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/principal.h"
#include "common/server.h"
#include "common/service_main.h"
#include "medkoord/shortage/v1/shortage.grpc.pb.h"
#include "services/shortage/event_feed.h"
#include "services/shortage/service_parts.h"
#include "services/shortage/shortage_store.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/shortage_data.h"

namespace medkoord::shortage::testing {

namespace v1 = ::medkoord::shortage::v1;

inline const std::string& PrincipalKey() {
  static const std::string* key = new std::string("shortage-test-principal-key-0123456789abcdef");
  return *key;
}

inline const PrincipalSigner& TestSigner() {
  static const PrincipalSigner* signer = new PrincipalSigner(*PrincipalSigner::Create(PrincipalKey()));
  return *signer;
}

inline Principal TaskForce() {
  Principal p;
  p.set_id("task-force-1");
  p.add_roles(common::v1::ROLE_TASK_FORCE);
  return p;
}

inline Principal RegionCaller(common::v1::Region region) {
  Principal p;
  p.set_id(std::string("region-it-") + std::to_string(region));
  p.add_roles(common::v1::ROLE_REGION);
  p.set_region(region);
  return p;
}

inline Principal ForumMember() {
  Principal p;
  p.set_id("forum-member-1");
  p.add_roles(common::v1::ROLE_FORUM_MEMBER);
  return p;
}

// A client context signed for `method` ("AnnounceShortage") as `principal`.
inline std::unique_ptr<grpc::ClientContext> Signed(const Principal& principal, const char* method,
                                                   absl::Duration deadline = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  TestSigner().Attach(*context, principal, FullMethodName(v1::Shortage::service_full_name(), method));
  context->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return context;
}

// One replica: its own pool, feed and server over a shared database.
class Instance {
 public:
  static std::unique_ptr<Instance> Start(const std::string& db_url, const Clock& clock,
                                         EventHub::Options feed = FastFeed(),
                                         EventPruner::Options retention = EventPruner::Options{}) {
    auto instance = std::unique_ptr<Instance>(new Instance());
    db::PoolOptions pool_options;
    pool_options.url = db_url;
    pool_options.size = 4;
    pool_options.prepare = ShortageStore::Prepare;
    instance->pool_ = std::make_unique<db::Pool>(pool_options);
    auto migrated = db::Migrate(*instance->pool_, Migrations());
    EXPECT_TRUE(migrated.ok()) << migrated.status();
    instance->config_ = std::make_unique<Config>(std::vector<std::string>{}, std::map<std::string, std::string>{});
    ServiceContext context{*instance->config_, *instance->pool_, TestSigner(), clock};
    ShortageHandles handles;
    auto parts = BuildShortageService(context, FeedSettings{feed, retention}, &handles);
    EXPECT_TRUE(parts.ok()) << parts.status();
    instance->hub_ = handles.hub;
    instance->pruner_ = handles.pruner;
    instance->parts_ = *std::move(parts);
    for (auto& task : instance->parts_.background) task->Start();
    ServerOptions options;
    options.service_name = "shortage-test";
    options.signer = &TestSigner();
    options.shutdown_grace = absl::Seconds(5);
    // As RunService wires it.
    options.on_shutdown = [parts = &instance->parts_] {
      for (auto& hook : parts->on_shutdown) hook();
    };
    std::vector<grpc::Service*> services;
    for (auto& s : instance->parts_.services) services.push_back(s.get());
    auto server = Server::Start(options, services);
    EXPECT_TRUE(server.ok()) << server.status();
    instance->server_ = *std::move(server);
    instance->channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", instance->server_->port()),
                                             grpc::InsecureChannelCredentials());
    instance->stub_ = v1::Shortage::NewStub(instance->channel_);
    EXPECT_TRUE(instance->hub_->AwaitHead(0, absl::Seconds(30))) << "feed never became ready";
    return instance;
  }

  // Feed settings for tests: a quick safety poll so nothing waits long.
  static EventHub::Options FastFeed() {
    EventHub::Options options;
    options.poll_interval = absl::Milliseconds(100);
    options.reconnect_backoff = absl::Milliseconds(50);
    return options;
  }

  ~Instance() {
    // The server first, as in production: its shutdown hook ends the open
    // streams, then the background tasks stop.
    if (server_) server_->Shutdown();
    for (auto& task : parts_.background) task->Stop();
  }

  v1::Shortage::Stub& stub() { return *stub_; }
  int port() const { return server_->port(); }
  EventHub& hub() { return *hub_; }
  EventPruner& pruner() { return *pruner_; }
  Server& server() { return *server_; }
  db::Pool& pool() { return *pool_; }

 private:
  Instance() = default;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<Config> config_;
  ServiceParts parts_;
  EventHub* hub_ = nullptr;
  EventPruner* pruner_ = nullptr;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Shortage::Stub> stub_;
};

// Test data: the 2024 peginterferon alfa-2a shortage.
inline v1::AnnounceShortageRequest Peginterferon(const std::string& request_id = "") {
  return medkoord::testing::PeginterferonShortage(request_id);
}

inline v1::ReportPositionRequest Position(const std::string& parent, common::v1::Region region, int64_t stock,
                                          double weekly, int patients) {
  v1::ReportPositionRequest r;
  r.set_parent(parent);
  r.mutable_position()->set_region(region);
  r.mutable_position()->set_stock_packs(stock);
  r.mutable_position()->set_weekly_consumption_packs(weekly);
  r.mutable_position()->set_patients_on_treatment(patients);
  return r;
}

// The field paths of an INVALID_ARGUMENT's BadRequest details.
std::vector<std::string> ViolatedFields(const grpc::Status& status);

// Reads events from a stream until `count` events arrived (CaughtUp markers
// are recorded in *caught_up when given). False when the stream ended first.
bool ReadEvents(grpc::ClientReader<v1::WatchShortagesResponse>& reader, size_t count,
                std::vector<v1::ShortageEvent>* events, std::optional<int64_t>* caught_up = nullptr);

}  // namespace medkoord::shortage::testing
