// medkoord-load: the load/soak driver of issue 8 (docs/BENCHMARKS.md "Load
// and soak"). Starts the whole suite on loopback (tests/e2e/suite.h: a
// private PostgreSQL cluster, the four services and the gateway with TLS),
// loads the demo data with the loaders of deploy/local/demo.d, then runs a
// mix of calls through the gateway with one API key per caller for
// --duration while 1,000 WatchShortages subscribers follow the feed, and an
// RWD analysis runs now and then. It stops by itself and exits non-zero on
// any failed call, any feed event lost, a process that died, or memory
// growth beyond the stated bound.
//
//   medkoord-load [--duration=10m] [--rate=100] [--workers=16]
//                 [--subscribers=1000] [--analysis_interval=60s]
//                 [--sample_interval=10s] [--rss_limit_mib=16]
//                 [--rss_limit_percent=20] [--json=FILE]

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "medkoord/intake/v1/intake.grpc.pb.h"
#include "medkoord/rwd/v1/rwd.grpc.pb.h"
#include "medkoord/shortage/v1/shortage.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/suite.h"
#include "tests/load/load_stats.h"

namespace medkoord::load {
namespace {

namespace iv1 = medkoord::intake::v1;
namespace av1 = medkoord::assessment::v1;
namespace sv1 = medkoord::shortage::v1;
namespace rv1 = medkoord::rwd::v1;
namespace cv1 = medkoord::common::v1;
using e2e::Authorize;

// The demo shortage of deploy/local/demo.d/30-shortage-peginterferon.
constexpr char kShortage[] = "shortages/peginterferon-alfa-2a-2024";
constexpr char kPilotProtocol[] = "protocols/pilot-1-pembrolizumab-nsclc";

struct Options {
  absl::Duration duration = absl::Minutes(10);
  double rate = 100;  // calls per second over all workers
  int workers = 16;
  int subscribers = 1000;
  absl::Duration analysis_interval = absl::Seconds(60);
  absl::Duration sample_interval = absl::Seconds(10);
  int64_t rss_limit_kib = 16 * 1024;
  double rss_limit_fraction = 0.20;
  std::string json_path;
};

bool ParseOptions(int argc, char** argv, Options& o) {
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    auto duration = [&](absl::Duration& d) {
      if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration()) ok = false;
    };
    int64_t n = 0;
    double x = 0;
    if (name == "--duration") {
      duration(o.duration);
    } else if (name == "--analysis_interval") {
      duration(o.analysis_interval);
    } else if (name == "--sample_interval") {
      duration(o.sample_interval);
    } else if (name == "--rate" && absl::SimpleAtod(value, &x) && x > 0) {
      o.rate = x;
    } else if (name == "--workers" && absl::SimpleAtoi(value, &n) && n > 0 && n <= 1000) {
      o.workers = static_cast<int>(n);
    } else if (name == "--subscribers" && absl::SimpleAtoi(value, &n) && n >= 0 && n <= 100000) {
      o.subscribers = static_cast<int>(n);
    } else if (name == "--rss_limit_mib" && absl::SimpleAtoi(value, &n) && n >= 0) {
      o.rss_limit_kib = n * 1024;
    } else if (name == "--rss_limit_percent" && absl::SimpleAtod(value, &x) && x >= 0) {
      o.rss_limit_fraction = x / 100;
    } else if (name == "--json" && !value.empty()) {
      o.json_path = value;
    } else {
      std::fprintf(stderr, "medkoord-load: bad argument %s\n", arg.c_str());
      ok = false;
    }
  }
  return ok;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


struct RegionInfo {
  cv1::Region region;
  const char* slug;
};
constexpr RegionInfo kRegions[] = {{cv1::REGION_HOVEDSTADEN, "hovedstaden"},
                                   {cv1::REGION_MIDTJYLLAND, "midtjylland"},
                                   {cv1::REGION_SYDDANMARK, "syddanmark"},
                                   {cv1::REGION_SJAELLAND, "sjaelland"},
                                   {cv1::REGION_NORDJYLLAND, "nordjylland"}};
constexpr int kRegionCount = 5;

// Applications as regions file them: real drugs and indications.
struct Indication {
  const char* drug;
  const char* atc;
  const char* indication;
  const char* icd10;
  bool cancer;
};
constexpr Indication kIndications[] = {
    {"pembrolizumab (Keytruda)", "L01FF02", "ikke-småcellet lungekræft, 2. linje", "C34.9", true},
    {"nivolumab (Opdivo)", "L01FF01", "malignt melanom, adjuverende", "C43.9", true},
    {"trastuzumab deruxtecan (Enhertu)", "L01FD04", "HER2-lav metastatisk brystkræft", "C50.9", true},
    {"sacituzumab govitecan (Trodelvy)", "L01FX17", "triple-negativ brystkræft", "C50.9", true},
    {"dupilumab (Dupixent)", "D11AH05", "svær atopisk dermatitis hos barn under 6 år", "L20.9", false},
    {"tocilizumab (RoActemra)", "L04AC07", "kæmpecellearteritis", "M31.6", false},
    {"rituximab (MabThera)", "L01FA01", "membranøs nefropati", "N04.2", false},
    {"ropeginterferon alfa-2b (Besremi)", "L03AB15", "polycytæmia vera under graviditet", "D45", false}};

// Per-method figures.
struct MethodStats {
  LatencyHistogram latency;
  std::atomic<int64_t> ok{0};
  std::atomic<int64_t> failed{0};
  absl::Mutex mu;
  std::map<std::string, int64_t> errors ABSL_GUARDED_BY(mu);  // code name -> count
};

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "?";
  }
}

// Everything that counts as a failure of the run, with the first messages
// printed as they happen.
class Problems {
 public:
  void Add(const std::string& what) {
    absl::MutexLock lock(&mu_);
    if (++count_ <= 20) std::fprintf(stderr, "medkoord-load: ERROR %s\n", what.c_str());
  }
  int64_t count() const {
    absl::MutexLock lock(&mu_);
    return count_;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

// A channel of its own to the gateway (a local subchannel pool, so each is
// its own TCP connection, as separate clients would have).
std::shared_ptr<grpc::Channel> GatewayChannel(const e2e::Suite& suite, int index) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(suite.ca_file());
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("medkoord.load.channel", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(suite.gateway_addr(), grpc::SslCredentials(ssl), args);
}

// ------------------------------------------------------------ subscribers

struct FeedTotals {
  LatencyHistogram delay;               // commit (event time) to receipt
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> resumes{0};
  std::atomic<int64_t> caught_up{0};
  std::atomic<int> calls_open{0};
};

// One WatchShortages subscriber. A regional one (region set) sees positions
// of its own region only, so its sequence numbers have gaps; an unfiltered
// one must see every sequence number once, in order. A subscriber that the
// service ends as too far behind (RESOURCE_EXHAUSTED) resumes after the last
// sequence it got, as the API says.
class Subscriber {
 public:
  Subscriber(std::shared_ptr<grpc::Channel> channel, std::string key, std::optional<cv1::Region> region,
             absl::Time deadline, FeedTotals* totals, Problems* problems)
      : stub_(sv1::Shortage::NewStub(std::move(channel))),
        key_(std::move(key)),
        region_(region),
        deadline_(deadline),
        totals_(totals),
        problems_(problems) {}

  void Start() { StartCall(std::nullopt); }

  // Ends the subscription; Done() says when its call is over.
  void Cancel() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (call_ != nullptr) call_->ctx.TryCancel();
  }

  int64_t own_positions() const { return own_positions_.load(); }
  std::optional<cv1::Region> region() const { return region_; }

 private:
  class Call : public grpc::ClientReadReactor<sv1::WatchShortagesResponse> {
   public:
    Call(Subscriber* owner, std::optional<int64_t> after) : owner_(owner) {
      Authorize(ctx, owner->key_);
      ctx.set_deadline(absl::ToChronoTime(owner->deadline_));
      if (after.has_value()) request_.set_after_sequence(*after);
    }
    void Begin() {
      owner_->stub_->async()->WatchShortages(&ctx, &request_, this);
      StartRead(&response_);
      StartCall();
    }
    void OnReadDone(bool ok) override {
      if (!ok) return;
      owner_->OnMessage(response_);
      StartRead(&response_);
    }
    void OnDone(const grpc::Status& status) override {
      Subscriber* owner = owner_;
      const grpc::Status copy = status;
      delete this;  // the last reaction of this call
      owner->OnCallDone(copy);
    }

    grpc::ClientContext ctx;

   private:
    Subscriber* owner_;
    sv1::WatchShortagesRequest request_;
    sv1::WatchShortagesResponse response_;
  };

  void StartCall(std::optional<int64_t> after) {
    auto* call = new Call(this, after);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        delete call;
        return;
      }
      // A Cancel() from here on cancels the call as soon as it starts.
      call_ = call;
      totals_->calls_open.fetch_add(1);
    }
    call->Begin();
  }

  // Called for each message of the current call (one at a time).
  void OnMessage(const sv1::WatchShortagesResponse& m) {
    if (m.has_caught_up()) {
      if (!caught_up_.exchange(true)) totals_->caught_up.fetch_add(1);
      // The first CaughtUp of a fresh subscription fixes where counting
      // starts; after a resume the replay already continued from there.
      if (last_sequence_.load() < 0) last_sequence_ = m.caught_up().head_sequence();
      return;
    }
    if (!m.has_event()) return;
    const sv1::ShortageEvent& e = m.event();
    const int64_t last = last_sequence_.load();
    if (!region_.has_value() && last >= 0 && e.sequence() != last + 1) {
      problems_->Add(absl::StrCat("feed gap: unfiltered subscriber got sequence ", e.sequence(), " after ", last));
    } else if (e.sequence() <= last) {
      problems_->Add(absl::StrCat("feed out of order: sequence ", e.sequence(), " after ", last));
    }
    last_sequence_ = e.sequence();
    totals_->events.fetch_add(1);
    if (e.has_position()) {
      if (region_.has_value() && e.position().region() != *region_) {
        problems_->Add(absl::StrCat("regional subscriber of ", cv1::Region_Name(*region_), " saw a position of ",
                                    cv1::Region_Name(e.position().region())));
      }
      if (!region_.has_value() || e.position().region() == *region_) own_positions_.fetch_add(1);
    }
    if (e.has_changed() && e.changed().has_time()) {
      const absl::Time at =
          absl::FromUnixSeconds(e.changed().time().seconds()) + absl::Nanoseconds(e.changed().time().nanos());
      totals_->delay.Record(absl::Now() - at);
    }
  }

  void OnCallDone(const grpc::Status& status) {
    bool resume = false;
    {
      absl::MutexLock lock(&mu_);
      call_ = nullptr;
      if (!stopping_) {
        if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && last_sequence_.load() >= 0) {
          resume = true;
        } else {
          problems_->Add(absl::StrCat("WatchShortages ended early: ", CodeName(status.error_code()), " ",
                                      status.error_message()));
        }
      }
    }
    totals_->calls_open.fetch_sub(1);
    if (resume) {
      totals_->resumes.fetch_add(1);
      StartCall(last_sequence_.load());
    }
  }

  std::unique_ptr<sv1::Shortage::Stub> stub_;
  const std::string key_;
  const std::optional<cv1::Region> region_;
  const absl::Time deadline_;
  FeedTotals* totals_;
  Problems* problems_;
  std::atomic<bool> caught_up_{false};
  std::atomic<int64_t> last_sequence_{-1};
  std::atomic<int64_t> own_positions_{0};
  absl::Mutex mu_;
  Call* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// ------------------------------------------------------------ the mix

struct Keys {
  std::string region[kRegionCount];
  std::string forum_member, secretariat, task_force, analyst, loader;
};

enum Op {
  kSubmit,
  kGetApplication,
  kListOwnApplications,
  kWithdraw,
  kFindPrecedents,
  kListOwnCases,
  kListAllApplications,
  kAnnualReport,
  kReportPosition,
  kGetCoverage,
  kListShortages,
  kListPositions,
  kOpCount
};

// Weights out of 100: regions submit and read most; report requests are
// rare and heavy. A position report is cheap to store but fans out to every
// subscriber (1,000 deliveries through the gateway), so it is weighted as
// regions report during a shortage, a few times a day each, sped up.
constexpr int kWeights[kOpCount] = {15, 22, 14, 2, 10, 6, 6, 3, 4, 9, 5, 4};

class Load {
 public:
  Load(const e2e::Suite& suite, Keys keys, Options options, Problems* problems)
      : suite_(suite), keys_(std::move(keys)), options_(std::move(options)), problems_(problems),
        mix_(std::vector<int>(std::begin(kWeights), std::end(kWeights))) {
    for (int i = 0; i < 4; ++i) channels_.push_back(GatewayChannel(suite_, i));
    for (const char* m : {"intake.SubmitApplication", "intake.GetApplication", "intake.ListApplications(region)",
                          "intake.WithdrawApplication", "assessment.FindPrecedents", "assessment.ListCases(region)",
                          "intake.ListApplications(all)", "assessment.GetAnnualReport", "shortage.ReportPosition",
                          "shortage.GetCoverage", "shortage.ListShortages", "shortage.ListPositions",
                          "rwd.RunAnalysis"}) {
      stats_[m] = std::make_unique<MethodStats>();
    }
    run_id_ = absl::StrCat(absl::ToUnixSeconds(absl::Now()));
  }

  // Case names of each region to read from, starting with the imported ones.
  void SeedCases() {
    auto stub = iv1::Intake::NewStub(channels_[0]);
    for (int r = 0; r < kRegionCount; ++r) {
      grpc::ClientContext ctx;
      Authorize(ctx, keys_.region[r]);
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      iv1::ListApplicationsRequest req;
      req.set_parent(absl::StrCat("regions/", kRegions[r].slug));
      req.set_page_size(200);
      iv1::ListApplicationsResponse resp;
      grpc::Status s = stub->ListApplications(&ctx, req, &resp);
      if (!s.ok()) problems_->Add(absl::StrCat("seeding cases: ", s.error_message()));
      for (const auto& a : resp.applications()) RememberCase(r, a.name());
    }
  }

  // Runs the mix until `end`, then stops.
  void Run(absl::Time start, absl::Time end) {
    start_ = start;
    std::vector<std::thread> threads;
    for (int w = 0; w < options_.workers; ++w) threads.emplace_back([this, w, end] { Worker(w, end); });
    threads.emplace_back([this, end] { Analyses(end); });
    for (auto& t : threads) t.join();
    // Workers stop at their last slot before `end`; the run lasts until it.
    if (absl::Now() < end) absl::SleepFor(end - absl::Now());
  }

  int64_t positions_reported(int region) const { return positions_[region].load(); }
  int64_t positions_total() const {
    int64_t n = 0;
    for (const auto& p : positions_) n += p.load();
    return n;
  }
  const std::map<std::string, std::unique_ptr<MethodStats>>& stats() const { return stats_; }

 private:
  void Worker(int w, absl::Time end) {
    std::mt19937_64 rng(0x6d656b6f6f7264ULL + w);
    std::uniform_real_distribution<double> uniform(0, 1);
    // Each worker paces its share of the rate; starts are spread over one
    // period so the calls do not come in bursts.
    const absl::Duration period = absl::Seconds(options_.workers / options_.rate);
    absl::Time next = start_ + period * (static_cast<double>(w) / options_.workers);
    while (true) {
      const absl::Time now = absl::Now();
      if (next >= end || now >= end) break;
      if (next > now) absl::SleepFor(next - now);
      // Behind by more than a second (the suite is slower than the rate):
      // do not burst to catch up; the throughput figures show the shortfall.
      next = std::max(next + period, absl::Now() - absl::Seconds(1));
      const int region = static_cast<int>(rng() % kRegionCount);
      RunOp(static_cast<Op>(mix_.Pick(uniform(rng))), region, rng);
    }
  }

  // An RWD analysis now and then, as an analyst would start one.
  void Analyses(absl::Time end) {
    auto stub = rv1::Rwd::NewStub(channels_[3]);
    std::string cohort;
    {
      grpc::ClientContext ctx;
      Authorize(ctx, keys_.analyst);
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
      rv1::ListCohortsRequest req;
      req.set_protocol(kPilotProtocol);
      rv1::ListCohortsResponse resp;
      grpc::Status s = stub->ListCohorts(&ctx, req, &resp);
      if (!s.ok() || resp.cohorts().empty()) {
        problems_->Add(absl::StrCat("no demo cohort for ", kPilotProtocol, ": ", s.error_message()));
        return;
      }
      cohort = resp.cohorts(0).name();
    }
    int n = 0;
    for (absl::Time next = start_ + absl::Seconds(5); next < end; next += options_.analysis_interval) {
      if (next > absl::Now()) absl::SleepFor(next - absl::Now());
      if (absl::Now() >= end) break;
      rv1::RunAnalysisRequest req;
      req.set_request_id(absl::StrCat("load-", run_id_, "-analysis-", n++));
      req.set_protocol(kPilotProtocol);
      req.set_cohort(cohort);
      req.mutable_spec()->set_endpoint(n % 2 == 0 ? rv1::ENDPOINT_PFS : rv1::ENDPOINT_OS);
      rv1::Analysis resp;
      Timed("rwd.RunAnalysis", absl::Minutes(2), keys_.analyst,
            [&](grpc::ClientContext* ctx) { return stub->RunAnalysis(ctx, req, &resp); });
    }
  }

  template <typename Call>
  grpc::Status Timed(const std::string& method, absl::Duration timeout, const std::string& key, Call call) {
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    const absl::Time t0 = absl::Now();
    grpc::Status s = call(&ctx);
    MethodStats& st = *stats_.at(method);
    st.latency.Record(absl::Now() - t0);
    if (s.ok()) {
      st.ok.fetch_add(1);
    } else {
      st.failed.fetch_add(1);
      {
        absl::MutexLock lock(&st.mu);
        ++st.errors[CodeName(s.error_code())];
      }
      problems_->Add(absl::StrCat(method, ": ", CodeName(s.error_code()), " ", s.error_message()));
    }
    return s;
  }

  void RememberCase(int region, const std::string& name) {
    absl::MutexLock lock(&cases_mu_);
    auto& ring = cases_[region];
    ring.push_back(name);
    if (ring.size() > 512) ring.pop_front();
  }
  std::string SomeCase(int region, std::mt19937_64& rng) {
    absl::MutexLock lock(&cases_mu_);
    const auto& ring = cases_[region];
    if (ring.empty()) return "";
    return ring[rng() % ring.size()];
  }
  // A submitted case to withdraw, taken out of the read set's future picks
  // only by chance: a withdrawn application is still readable.
  std::string TakeOwnSubmission(int region) {
    absl::MutexLock lock(&cases_mu_);
    auto& own = submitted_[region];
    if (own.empty()) return "";
    std::string name = own.front();
    own.pop_front();
    return name;
  }

  void RunOp(Op op, int r, std::mt19937_64& rng) {
    const std::string& region_key = keys_.region[r];
    const Indication& ind = kIndications[rng() % std::size(kIndications)];
    const int ch = static_cast<int>(rng() % 3);  // channel 3 is the analyst's
    const absl::Duration timeout = absl::Seconds(30);
    switch (op) {
      case kSubmit: {
        auto stub = iv1::Intake::NewStub(channels_[ch]);
        const int64_t n = submitted_count_.fetch_add(1);
        iv1::SubmitApplicationRequest req;
        req.set_request_id(absl::StrCat("load-", run_id_, "-", n));
        iv1::Application* a = req.mutable_application();
        a->set_region_ref(absl::StrCat("LOAD-", run_id_, "-", n));
        a->set_region(kRegions[r].region);
        const absl::CivilDay today = DanishToday(*SystemClock());
        a->mutable_submitted_on()->set_year(static_cast<int32_t>(today.year()));
        a->mutable_submitted_on()->set_month(today.month());
        a->mutable_submitted_on()->set_day(today.day());
        a->set_drug_name(ind.drug);
        a->set_atc_code(ind.atc);
        a->set_indication(ind.indication);
        a->set_icd10(ind.icd10);
        a->set_cancer(ind.cancer);
        a->set_marketed_dk(rng() % 4 != 0);
        a->set_medicinraadet_status(rng() % 2 == 0 ? iv1::MEDICINRAADET_STATUS_NOT_ASSESSED
                                                   : iv1::MEDICINRAADET_STATUS_REJECTED);
        a->set_ema_status(iv1::EMA_STATUS_OFF_LABEL);
        a->set_note("Belastningstest: syntetisk ansøgning");
        iv1::Application resp;
        if (Timed("intake.SubmitApplication", timeout, region_key,
                  [&](grpc::ClientContext* ctx) { return stub->SubmitApplication(ctx, req, &resp); })
                .ok()) {
          RememberCase(r, resp.name());
          absl::MutexLock lock(&cases_mu_);
          submitted_[r].push_back(resp.name());
          if (submitted_[r].size() > 512) submitted_[r].pop_front();
        }
        break;
      }
      case kGetApplication: {
        const std::string name = SomeCase(r, rng);
        if (name.empty()) break;
        auto stub = iv1::Intake::NewStub(channels_[ch]);
        iv1::GetApplicationRequest req;
        req.set_name(name);
        iv1::Application resp;
        Timed("intake.GetApplication", timeout, region_key,
              [&](grpc::ClientContext* ctx) { return stub->GetApplication(ctx, req, &resp); });
        break;
      }
      case kListOwnApplications: {
        auto stub = iv1::Intake::NewStub(channels_[ch]);
        iv1::ListApplicationsRequest req;
        req.set_parent(absl::StrCat("regions/", kRegions[r].slug));
        req.set_page_size(20);
        if (rng() % 2 == 0) req.set_atc_code(std::string(ind.atc).substr(0, 3));
        iv1::ListApplicationsResponse resp;
        Timed("intake.ListApplications(region)", timeout, region_key,
              [&](grpc::ClientContext* ctx) { return stub->ListApplications(ctx, req, &resp); });
        break;
      }
      case kWithdraw: {
        const std::string name = TakeOwnSubmission(r);
        if (name.empty()) break;
        auto stub = iv1::Intake::NewStub(channels_[ch]);
        iv1::WithdrawApplicationRequest req;
        req.set_name(name);
        req.set_reason("Patienten er overgået til anden behandling");
        iv1::Application resp;
        Timed("intake.WithdrawApplication", timeout, region_key,
              [&](grpc::ClientContext* ctx) { return stub->WithdrawApplication(ctx, req, &resp); });
        break;
      }
      case kFindPrecedents: {
        auto stub = av1::Assessment::NewStub(channels_[ch]);
        av1::FindPrecedentsRequest req;
        req.set_atc_code(ind.atc);
        req.set_icd10(std::string(ind.icd10).substr(0, 3));
        req.set_page_size(50);
        av1::FindPrecedentsResponse resp;
        Timed("assessment.FindPrecedents", timeout, region_key,
              [&](grpc::ClientContext* ctx) { return stub->FindPrecedents(ctx, req, &resp); });
        break;
      }
      case kListOwnCases: {
        auto stub = av1::Assessment::NewStub(channels_[ch]);
        av1::ListCasesRequest req;
        req.set_region(kRegions[r].region);
        req.set_page_size(20);
        av1::ListCasesResponse resp;
        Timed("assessment.ListCases(region)", timeout, region_key,
              [&](grpc::ClientContext* ctx) { return stub->ListCases(ctx, req, &resp); });
        break;
      }
      case kListAllApplications: {
        auto stub = iv1::Intake::NewStub(channels_[ch]);
        iv1::ListApplicationsRequest req;
        req.set_parent("regions/-");
        req.set_page_size(50);
        iv1::ListApplicationsResponse resp;
        Timed("intake.ListApplications(all)", timeout, keys_.forum_member,
              [&](grpc::ClientContext* ctx) { return stub->ListApplications(ctx, req, &resp); });
        break;
      }
      case kAnnualReport: {
        auto stub = av1::Assessment::NewStub(channels_[ch]);
        av1::GetAnnualReportRequest req;
        // The imported year, or the current one the submissions go to.
        req.set_year(rng() % 2 == 0 ? 2024 : static_cast<int32_t>(DanishToday(*SystemClock()).year()));
        req.set_format(rng() % 3 == 0 ? av1::GetAnnualReportRequest::FORMAT_CSV
                                      : av1::GetAnnualReportRequest::FORMAT_PROTO);
        av1::GetAnnualReportResponse resp;
        Timed("assessment.GetAnnualReport", absl::Seconds(60), rng() % 2 == 0 ? keys_.secretariat : keys_.forum_member,
              [&](grpc::ClientContext* ctx) { return stub->GetAnnualReport(ctx, req, &resp); });
        break;
      }
      case kReportPosition: {
        auto stub = sv1::Shortage::NewStub(channels_[ch]);
        const int64_t n = position_count_.fetch_add(1);
        sv1::ReportPositionRequest req;
        req.set_parent(kShortage);
        req.set_request_id(absl::StrCat("load-", run_id_, "-position-", n));
        sv1::RegionalPosition* p = req.mutable_position();
        p->set_region(kRegions[r].region);
        p->set_stock_packs(static_cast<int64_t>(rng() % 400));
        p->set_weekly_consumption_packs(static_cast<double>(rng() % 2000) / 100.0);
        p->set_patients_on_treatment(static_cast<int32_t>(rng() % 150));
        p->set_notes("Belastningstest");
        sv1::RegionalPosition resp;
        if (Timed("shortage.ReportPosition", timeout, region_key,
                  [&](grpc::ClientContext* ctx) { return stub->ReportPosition(ctx, req, &resp); })
                .ok()) {
          positions_[r].fetch_add(1);
        }
        break;
      }
      case kGetCoverage: {
        auto stub = sv1::Shortage::NewStub(channels_[ch]);
        sv1::GetCoverageRequest req;
        req.set_name(kShortage);
        sv1::Coverage resp;
        Timed("shortage.GetCoverage", timeout, rng() % 2 == 0 ? keys_.task_force : region_key,
              [&](grpc::ClientContext* ctx) { return stub->GetCoverage(ctx, req, &resp); });
        break;
      }
      case kListShortages: {
        auto stub = sv1::Shortage::NewStub(channels_[ch]);
        sv1::ListShortagesRequest req;
        req.set_page_size(50);
        sv1::ListShortagesResponse resp;
        Timed("shortage.ListShortages", timeout, rng() % 2 == 0 ? keys_.task_force : region_key,
              [&](grpc::ClientContext* ctx) { return stub->ListShortages(ctx, req, &resp); });
        break;
      }
      case kListPositions: {
        auto stub = sv1::Shortage::NewStub(channels_[ch]);
        sv1::ListPositionsRequest req;
        req.set_parent(kShortage);
        req.set_current_only(true);
        sv1::ListPositionsResponse resp;
        Timed("shortage.ListPositions", timeout, keys_.task_force,
              [&](grpc::ClientContext* ctx) { return stub->ListPositions(ctx, req, &resp); });
        break;
      }
      case kOpCount:
        break;
    }
  }

  const e2e::Suite& suite_;
  const Keys keys_;
  const Options options_;
  Problems* problems_;
  const WeightedChoice mix_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::map<std::string, std::unique_ptr<MethodStats>> stats_;
  std::string run_id_;
  absl::Time start_;
  std::atomic<int64_t> submitted_count_{0};
  std::atomic<int64_t> position_count_{0};
  std::atomic<int64_t> positions_[kRegionCount] = {};
  absl::Mutex cases_mu_;
  std::deque<std::string> cases_[kRegionCount] ABSL_GUARDED_BY(cases_mu_);
  std::deque<std::string> submitted_[kRegionCount] ABSL_GUARDED_BY(cases_mu_);
};

// ------------------------------------------------------------ memory

struct Watched {
  std::string name;
  pid_t pid;
  std::vector<RssSample> samples;
  bool gone = false;
  double cpu_start_s = 0;  // user + system CPU when the load started
  double cpu_end_s = 0;
};

// User + system CPU seconds of a process (/proc/<pid>/stat fields 14, 15).
double CpuSeconds(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t paren = stat.rfind(')');  // the name may hold spaces
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> field && i <= 15; ++i) {
    if (i == 14) absl::SimpleAtod(field, &utime);
    if (i == 15) absl::SimpleAtod(field, &stime);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The suite's processes: our children named after the five binaries.
std::vector<Watched> FindSuiteProcesses() {
  std::vector<Watched> out;
  const pid_t self = getpid();
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    int64_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    const std::string status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
    std::string name;
    int64_t ppid = -1;
    std::istringstream lines(status);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("Name:", 0) == 0) name = std::string(absl::StripAsciiWhitespace(line.substr(5)));
      if (line.rfind("PPid:", 0) == 0) absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(5)), &ppid);
    }
    if (ppid != self) continue;
    for (const char* svc : {"gateway", "intake", "assessment", "shortage", "rwd"}) {
      if (name == svc) out.push_back({name, static_cast<pid_t>(pid), {}, false});
    }
  }
  closedir(proc);
  std::sort(out.begin(), out.end(), [](const Watched& a, const Watched& b) { return a.name < b.name; });
  Watched self_entry{"medkoord-load", self, {}, false};
  out.push_back(self_entry);
  return out;
}

void SampleRss(std::vector<Watched>& watched, absl::Duration at, Problems* problems) {
  for (Watched& w : watched) {
    if (w.gone) continue;
    auto kib = ParseVmRssKib(ReadFile(absl::StrCat("/proc/", w.pid, "/status")));
    if (!kib.has_value()) {
      w.gone = true;
      problems->Add(absl::StrCat(w.name, " (pid ", w.pid, ") is gone"));
      continue;
    }
    w.samples.push_back({at, *kib});
  }
}

std::string Ms(absl::Duration d) { return absl::StrFormat("%.1f", absl::ToDoubleMilliseconds(d)); }

int Main(int argc, char** argv) {
  Options options;
  if (!ParseOptions(argc, argv, options)) return 2;
  Problems problems;
  std::printf("medkoord-load: starting the suite (PostgreSQL, 4 services, gateway with TLS)\n");
  std::fflush(stdout);
  // A cluster of its own, never that of a ctest run in the same build
  // folder: the figures must not include someone else's tests.
  setenv("MEDKOORD_TEST_PG_INFO", "/nonexistent/medkoord-load", 1);
  e2e::SuiteOptions suite_options;
  suite_options.tls = true;
  auto suite = e2e::Suite::Start(suite_options);
  for (int attempt = 1; attempt < 4 && !suite.ok() && absl::StrContains(suite.status().message(), "listen");
       ++attempt) {
    suite = e2e::Suite::Start(suite_options);
  }
  if (!suite.ok()) {
    std::fprintf(stderr, "medkoord-load: suite did not start: %s\n", std::string(suite.status().message()).c_str());
    return 1;
  }
  const e2e::Suite& s = **suite;

  // One key per caller, as each region's and body's systems would have.
  Keys keys;
  auto key = [&](const std::string& id, const std::string& roles, const std::string& region) {
    auto k = s.CreateKey(id, roles, region);
    if (!k.ok()) {
      problems.Add(absl::StrCat("creating key ", id, ": ", k.status().message()));
      return std::string();
    }
    return *k;
  };
  for (int r = 0; r < kRegionCount; ++r) {
    keys.region[r] = key(absl::StrCat("load-region-", kRegions[r].slug), "region", kRegions[r].slug);
  }
  keys.forum_member = key("load-forum-member", "forum_member", "");
  keys.secretariat = key("load-secretariat", "forum_secretariat", "");
  keys.task_force = key("load-task-force", "task_force", "");
  keys.analyst = key("load-analyst", "analyst", "");
  keys.loader = key("demo", "forum_secretariat,task_force,analyst,admin", "");
  if (problems.count() > 0) return 1;

  // The demo data, with deploy/local's own loaders.
  {
    const absl::Time t0 = absl::Now();
    if (absl::Status loaded = s.LoadDemoData(keys.loader); !loaded.ok()) {
      problems.Add(std::string(loaded.message()));
      return 1;
    }
    std::printf("medkoord-load: demo data loaded in %.1f s\n", absl::ToDoubleSeconds(absl::Now() - t0));
  }

  // Subscribers: regional ones (each region's pharmacy), and unfiltered
  // ones (Task Force and Forum dashboards), spread over 8 connections and
  // opened at a pace the gateway's per-key rate limit allows.
  const absl::Time subscribe_deadline = absl::Now() + options.duration + absl::Minutes(10);
  FeedTotals feed;
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; i < 8; ++i) channels.push_back(GatewayChannel(s, 100 + i));
    const std::string unfiltered_keys[] = {keys.task_force, keys.forum_member, keys.secretariat};
    const absl::Time t0 = absl::Now();
    for (int i = 0; i < options.subscribers; ++i) {
      std::optional<cv1::Region> region;
      std::string k;
      if (i % 2 == 0) {
        const int r = (i / 2) % kRegionCount;
        region = kRegions[r].region;
        k = keys.region[r];
      } else {
        k = unfiltered_keys[(i / 2) % 3];
      }
      subscribers.push_back(
          std::make_unique<Subscriber>(channels[i % channels.size()], k, region, subscribe_deadline, &feed, &problems));
      subscribers.back()->Start();
      // 8 keys share the opening: 200 a second stays under 100 per key.
      absl::SleepFor(absl::Milliseconds(5));
    }
    const absl::Time until = absl::Now() + absl::Seconds(120);
    while (feed.caught_up.load() < options.subscribers && absl::Now() < until && problems.count() == 0) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    if (feed.caught_up.load() < options.subscribers) {
      problems.Add(absl::StrCat("only ", feed.caught_up.load(), " of ", options.subscribers, " subscribers caught up"));
    }
    std::printf("medkoord-load: %d WatchShortages subscribers caught up in %.1f s\n", options.subscribers,
                absl::ToDoubleSeconds(absl::Now() - t0));
  }

  Load load(s, keys, options, &problems);
  load.SeedCases();
  std::vector<Watched> watched = FindSuiteProcesses();
  if (watched.size() != 6) problems.Add(absl::StrCat("found ", watched.size() - 1, " of 5 suite processes"));

  double load1_start = 0;
  if (std::ifstream la("/proc/loadavg"); la) la >> load1_start;
  std::printf("medkoord-load: running the mix for %s at %.0f calls/s with %d workers (load average %.2f)\n",
              absl::FormatDuration(options.duration).c_str(), options.rate, options.workers, load1_start);
  std::fflush(stdout);
  for (Watched& w : watched) w.cpu_start_s = CpuSeconds(w.pid);
  const absl::Time start = absl::Now();
  const absl::Time end = start + options.duration;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    for (absl::Time next = start; sampling.load(); next += options.sample_interval) {
      while (sampling.load() && absl::Now() < next) absl::SleepFor(absl::Milliseconds(50));
      if (!sampling.load()) break;
      SampleRss(watched, absl::Now() - start, &problems);
    }
  });
  load.Run(start, end);
  const absl::Duration ran = absl::Now() - start;
  SampleRss(watched, ran, &problems);
  for (Watched& w : watched) w.cpu_end_s = CpuSeconds(w.pid);
  sampling = false;
  sampler.join();
  double load1_end = 0;
  if (std::ifstream la("/proc/loadavg"); la) la >> load1_end;

  // Every subscriber must have every event the load caused: all positions
  // for the unfiltered ones, their own region's for the regional ones.
  const absl::Time settle_until = absl::Now() + absl::Seconds(60);
  auto missing = [&] {
    int64_t short_by = 0;
    for (const auto& sub : subscribers) {
      const int64_t expected = sub->region().has_value()
                                   ? load.positions_reported(static_cast<int>(*sub->region()) - 1)
                                   : load.positions_total();
      short_by += std::max<int64_t>(0, expected - sub->own_positions());
    }
    return short_by;
  };
  while (missing() > 0 && absl::Now() < settle_until) absl::SleepFor(absl::Milliseconds(100));
  const int64_t events_missing = missing();
  if (events_missing > 0) problems.Add(absl::StrCat(events_missing, " feed events never reached their subscribers"));
  for (auto& sub : subscribers) sub->Cancel();
  const absl::Time cancel_until = absl::Now() + absl::Seconds(30);
  while (feed.calls_open.load() > 0 && absl::Now() < cancel_until) absl::SleepFor(absl::Milliseconds(50));
  if (feed.calls_open.load() > 0) {
    problems.Add(absl::StrCat(feed.calls_open.load(), " WatchShortages calls did not end when cancelled"));
    // Their reactors still point at the subscribers: keep those alive.
    for (auto& sub : subscribers) sub.release();
  }

  // ---------------------------------------------------------------- report
  nlohmann::json report;
  report["duration_s"] = absl::ToDoubleSeconds(ran);
  report["target_rate"] = options.rate;
  report["workers"] = options.workers;
  report["subscribers"] = options.subscribers;
  report["load_average_start"] = load1_start;
  report["load_average_end"] = load1_end;
  std::printf("\n%-34s %9s %8s %7s %9s %9s %9s  %s\n", "method", "calls", "per s", "errors", "p50 ms", "p99 ms",
              "max ms", "error codes");
  int64_t total_calls = 0, total_errors = 0;
  for (const auto& [method, st] : load.stats()) {
    const int64_t calls = st->ok.load() + st->failed.load();
    total_calls += calls;
    total_errors += st->failed.load();
    std::string codes;
    {
      absl::MutexLock lock(&st->mu);
      for (const auto& [code, n] : st->errors) absl::StrAppend(&codes, code, "=", n, " ");
      report["methods"][method] = {{"calls", calls},
                                   {"errors", st->failed.load()},
                                   {"error_codes", st->errors},
                                   {"per_s", calls / absl::ToDoubleSeconds(ran)},
                                   {"p50_ms", absl::ToDoubleMilliseconds(st->latency.Quantile(0.5))},
                                   {"p99_ms", absl::ToDoubleMilliseconds(st->latency.Quantile(0.99))},
                                   {"max_ms", absl::ToDoubleMilliseconds(st->latency.Max())}};
    }
    std::printf("%-34s %9lld %8.2f %7lld %9s %9s %9s  %s\n", method.c_str(), static_cast<long long>(calls),
                calls / absl::ToDoubleSeconds(ran), static_cast<long long>(st->failed.load()),
                Ms(st->latency.Quantile(0.5)).c_str(), Ms(st->latency.Quantile(0.99)).c_str(),
                Ms(st->latency.Max()).c_str(), codes.c_str());
  }
  std::printf("%-34s %9lld %8.2f %7lld\n", "all calls", static_cast<long long>(total_calls),
              total_calls / absl::ToDoubleSeconds(ran), static_cast<long long>(total_errors));
  report["calls"] = total_calls;
  report["errors"] = total_errors;
  report["throughput_per_s"] = total_calls / absl::ToDoubleSeconds(ran);

  std::printf("\nfeed: %d subscribers, %lld events delivered (%lld positions reported), %lld resumes, "
              "%lld missing; commit-to-subscriber delay p50 %s ms, p99 %s ms, max %s ms\n",
              options.subscribers, static_cast<long long>(feed.events.load()),
              static_cast<long long>(load.positions_total()), static_cast<long long>(feed.resumes.load()),
              static_cast<long long>(events_missing), Ms(feed.delay.Quantile(0.5)).c_str(),
              Ms(feed.delay.Quantile(0.99)).c_str(), Ms(feed.delay.Max()).c_str());
  report["feed"] = {{"events_delivered", feed.events.load()},
                    {"positions_reported", load.positions_total()},
                    {"resumes", feed.resumes.load()},
                    {"missing", events_missing},
                    {"delay_p50_ms", absl::ToDoubleMilliseconds(feed.delay.Quantile(0.5))},
                    {"delay_p99_ms", absl::ToDoubleMilliseconds(feed.delay.Quantile(0.99))},
                    {"delay_max_ms", absl::ToDoubleMilliseconds(feed.delay.Max())}};

  std::printf("\nmemory (VmRSS every %s; first vs last minute; bound: growth <= max(%lld MiB, %.0f %%))\n",
              absl::FormatDuration(options.sample_interval).c_str(),
              static_cast<long long>(options.rss_limit_kib / 1024), options.rss_limit_fraction * 100);
  std::printf("%-14s %8s %12s %12s %10s %10s %12s %9s  %s\n", "process", "pid", "first MiB", "last MiB", "peak MiB",
              "allowed", "MiB/min", "CPU s", "verdict");
  bool memory_ok = true;
  for (const Watched& w : watched) {
    const RssVerdict v = JudgeRss(w.samples, ran, options.rss_limit_kib, options.rss_limit_fraction);
    // The driver's own memory holds its figures and is not judged.
    const bool judged = w.name != "medkoord-load";
    const char* verdict = !judged ? "(driver, not judged)"
                          : w.gone ? "GONE"
                          : !v.enough_samples ? "run too short to judge"
                          : v.flat ? "flat" : "GREW";
    if (judged && (w.gone || !v.flat)) memory_ok = false;
    std::printf("%-14s %8d %12.1f %12.1f %10.1f %10.1f %12.2f %9.1f  %s\n", w.name.c_str(), static_cast<int>(w.pid),
                v.first_minute_kib / 1024.0, v.last_minute_kib / 1024.0, v.peak_kib / 1024.0,
                v.allowed_growth_kib / 1024.0, v.growth_kib_per_minute / 1024.0, w.cpu_end_s - w.cpu_start_s,
                verdict);
    nlohmann::json samples = nlohmann::json::array();
    for (const RssSample& x : w.samples) samples.push_back({absl::ToDoubleSeconds(x.at), x.kib});
    report["memory"][w.name] = {{"first_minute_kib", v.first_minute_kib}, {"last_minute_kib", v.last_minute_kib},
                                {"peak_kib", v.peak_kib},                 {"allowed_growth_kib", v.allowed_growth_kib},
                                {"kib_per_minute", v.growth_kib_per_minute}, {"verdict", verdict},
                                {"cpu_s", w.cpu_end_s - w.cpu_start_s},
                                {"samples", samples}};
  }
  if (!memory_ok) problems.Add("memory of a suite process grew beyond the bound, or a process died");
  std::printf("\nload average: %.2f at the start, %.2f at the end (1-minute)\n", load1_start, load1_end);

  report["problems"] = problems.count();
  if (!options.json_path.empty()) std::ofstream(options.json_path) << report.dump(2) << "\n";
  if (problems.count() > 0) {
    std::printf("medkoord-load: FAILED, %lld problems (the first 20 are above)\n",
                static_cast<long long>(problems.count()));
    return 1;
  }
  std::printf("medkoord-load: OK, no errors, no lost events, memory flat\n");
  return 0;
}

}  // namespace
}  // namespace medkoord::load

int main(int argc, char** argv) { return medkoord::load::Main(argc, argv); }
