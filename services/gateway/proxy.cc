#include "services/gateway/proxy.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "services/gateway/api_key.h"
#include "services/gateway/audit_resource.h"

namespace medkoord::gateway {
namespace {

// Metadata the gateway never passes on: credentials, its own signed
// principal (a caller must not smuggle one in), transport headers, and the
// ids it sets itself (x-request-id, traceparent).
bool ForwardableRequestKey(std::string_view key) {
  return !(key.empty() || key[0] == ':' || key.starts_with("grpc-") || key == "authorization" ||
           key == "user-agent" || key == "te" || key == "content-type" || key == "host" ||
           key == kPrincipalMetadata || key == kSignatureMetadata || key == "x-request-id" ||
           key == "traceparent");
}

bool ForwardableResponseKey(std::string_view key) {
  return !(key.empty() || key[0] == ':' || key.starts_with("grpc-") || key == "content-type" ||
           key == "x-request-id");
}

std::string_view View(const grpc::string_ref& s) { return std::string_view(s.data(), s.size()); }

std::string Find(const std::multimap<grpc::string_ref, grpc::string_ref>& md, std::string_view key) {
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  return it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

// One call through the proxy, driven by completion-queue events: the thread
// that takes an event from the queue also handles it. (With the callback API
// every reaction was handed to gRPC's executor, one more thread wake-up per
// reaction; on two busy cores each cost tens of microseconds.)
//
// Every started operation (and the call's done notification and a pending
// authentication) counts in `pending_`; the call deletes itself when the
// last one has completed. Handlers run under `mu_`, as a streaming call's
// two directions complete on different threads.
class ProxyCall {
 public:
  // The events of a call. A Tag is what goes through the queue.
  enum class Op {
    kRequested, kDone, kReadFirst, kRead, kWrite, kFinish, kSendMetadata,
    kUpStart, kUpMetadata, kUpRead, kUpWrite, kUpWritesDone, kUpFinish, kHealthChanged, kUnaryDone,
  };
  struct Tag {
    ProxyCall* call;
    Op op;
  };

  ProxyCall(Proxy* proxy, grpc::ServerCompletionQueue* cq)
      : proxy_(proxy), deps_(proxy->deps()), cq_(cq), stream_(&ctx_) {
    for (int i = 0; i < kOps; ++i) tags_[i] = Tag{this, static_cast<Op>(i)};
    // Must precede the request; delivered only for a call that started.
    ctx_.AsyncNotifyWhenDone(TagFor(Op::kDone));
    proxy_->service()->RequestCall(&ctx_, &stream_, cq_, cq_, TagFor(Op::kRequested));
  }
  ~ProxyCall() {
    if (started_) proxy_->CallEnded();
  }

  // Runs one event; deletes the call after its last one.
  static void Handle(void* t, bool ok) {
    Tag* tag = static_cast<Tag*>(t);
    ProxyCall* call = tag->call;
    if (tag->op == Op::kRequested) {
      if (!ok) {  // the server is shutting down: this call never started
        delete call;
        return;
      }
      new ProxyCall(call->proxy_, call->cq_);  // the next call of this queue
    }
    bool admit = false, last = false;
    {
      absl::MutexLock lock(&call->mu_);
      call->On(tag->op, ok);
      admit = std::exchange(call->admit_, false);
      // Admit's answer counts as pending from here: a cancellation handled
      // on another thread meanwhile must not delete the call under it.
      if (admit) ++call->pending_;
      last = --call->pending_ == 0;
    }
    if (admit) call->Admit();  // outside mu_: the answer may come on this thread
    if (last) delete call;
  }

 private:
  static constexpr int kOps = static_cast<int>(Op::kUnaryDone) + 1;

  void* TagFor(Op op) { return &tags_[static_cast<int>(op)]; }
  // Counts an operation about to start.
  void* Started(Op op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++pending_;
    return TagFor(op);
  }

  void On(Op op, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (op) {
      case Op::kRequested: return Begin();
      case Op::kDone:
        if (ctx_.IsCancelled()) {
          cancelled_by_caller_ = true;
          client_ctx_.TryCancel();
          if (watch_) EndWatch(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the caller"));
        }
        return;
      case Op::kHealthChanged:
        if (finishing_) return;
        watcher_->Arm(cq_, Started(Op::kHealthChanged));
        return WatchSend();
      case Op::kReadFirst: return ReadFirst(ok);
      case Op::kRead: return Read(ok);
      case Op::kWrite: return Written(ok);
      case Op::kFinish: return;
      case Op::kSendMetadata:
        if (ok) return StartUpstreamRead();
        client_ctx_.TryCancel();  // the caller is gone; the backend's status ends the call
        return UpstreamFinish();
      case Op::kUpStart:
        if (!ok) return UpstreamFinish();
        return UpstreamStarted();
      case Op::kUpMetadata:
        ForwardInitialMetadata();
        stream_.SendInitialMetadata(Started(Op::kSendMetadata));
        return;
      case Op::kUpRead:
        if (!ok) return UpstreamFinish();
        stream_.Write(out_, Started(Op::kWrite));
        return;
      case Op::kUpWrite:
        // The backend stopped taking messages: stop reading the caller's; the
        // backend's status follows on the read side.
        if (ok && route_->client_streaming && !finishing_ && !upstream_finishing_) stream_.Read(&in_, Started(Op::kRead));
        return;
      case Op::kUpWritesDone: return;
      case Op::kUpFinish:
        ForwardTrailingMetadata();
        return Complete(BackendStatus(upstream_status_));
      case Op::kUnaryDone:
        // Initial metadata, the response and the status go back in one batch.
        ForwardInitialMetadata();
        ForwardTrailingMetadata();
        return Complete(BackendStatus(upstream_status_), upstream_status_.ok());
    }
  }

  void Begin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++pending_;  // the done notification, now that the call has started
    started_ = true;
    proxy_->CallStarted();
    method_ = ctx_.method();
    if (ServerReflection::Serves(method_) || method_ == HealthService::kCheck) {
      reflection_ = ServerReflection::Serves(method_);
      health_ = !reflection_;
      stream_.Read(&in_, Started(Op::kRead));
      return;
    }
    if (method_ == HealthService::kWatch) {
      watch_ = true;
      stream_.Read(&in_, Started(Op::kRead));
      return;
    }
    start_ = deps_.clock->Now();
    request_id_ = Find(ctx_.client_metadata(), "x-request-id");
    if (request_id_.empty()) request_id_ = NewRequestId();
    // The caller learns the id it can quote, also on errors.
    ctx_.AddInitialMetadata("x-request-id", request_id_);
    traceparent_ = TraceparentFor(Find(ctx_.client_metadata(), "traceparent"), request_id_);
    route_ = deps_.roles->Find(method_);
    state_ = proxy_->StateFor(route_);
    if (route_ == nullptr) {
      return Complete(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, absl::StrCat("unknown method ", method_)));
    }
    if (!route_->client_streaming) {
      // One request message: read it first so that the audit record names
      // the resource even for a refused call.
      stream_.Read(&first_, Started(Op::kReadFirst));
      return;
    }
    admit_ = true;
  }

  void ReadFirst(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) {
      return Complete(ctx_.IsCancelled() ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the caller")
                                         : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
    }
    resource_ = state_->resource.Read(first_);
    admit_ = true;
  }

  // Authenticates without blocking this thread (a key cache miss is answered
  // on a lookup thread), then rate limit, role table, the backend call.
  void Admit() ABSL_LOCKS_EXCLUDED(mu_) {
    const std::string key = ApiKeyFromMetadata(ctx_.client_metadata());
    PeerCertificate peer;
    if (key.empty()) {
      if (auto auth = ctx_.auth_context()) peer = PeerCertificateOf(*auth);
    }
    deps_.authenticator->AuthenticateAsync(key, peer, [this](absl::StatusOr<Principal> principal) {
      bool last = false;
      {
        absl::MutexLock lock(&mu_);
        absl::Status admitted = Admitted(std::move(principal));
        if (admitted.ok()) {
          StartUpstream();
        } else {
          Complete(ToGrpcStatus(admitted));
        }
        last = --pending_ == 0;
      }
      if (last) delete this;
    });
  }

  absl::Status Admitted(absl::StatusOr<Principal> principal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!principal.ok()) return principal.status();
    principal_ = *std::move(principal);
    RETURN_IF_ERROR(deps_.rate_limiter->Acquire(principal_.id()));
    if (!deps_.roles->Allows(*route_, principal_)) {
      return absl::PermissionDeniedError(absl::StrCat("principal ", principal_.id(), " may not call ", method_));
    }
    return absl::OkStatus();
  }

  void StartUpstream() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (deps_.local != nullptr && route_->backend == deps_.local->name()) return StartLocal();
    grpc::GenericStub* stub = proxy_->StubFor(route_->backend);
    if (stub == nullptr) {
      return Complete(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat("no address configured for ", route_->backend)));
    }
    auto deadline = ctx_.deadline();
    if (deadline == std::chrono::system_clock::time_point::max()) {
      deadline = absl::ToChronoTime(absl::Now() + proxy_->options().default_deadline);
    }
    client_ctx_.set_deadline(deadline);
    for (const auto& [key, value] : ctx_.client_metadata()) {
      if (ForwardableRequestKey(View(key))) client_ctx_.AddMetadata(std::string(View(key)), std::string(View(value)));
    }
    client_ctx_.AddMetadata("x-request-id", request_id_);
    client_ctx_.AddMetadata("traceparent", traceparent_);
    PrincipalSigner::Signed signed_principal = proxy_->signatures().Get(principal_, method_);
    client_ctx_.AddMetadata(kPrincipalMetadata, std::move(signed_principal.principal_bin));
    client_ctx_.AddMetadata(kSignatureMetadata, std::move(signed_principal.signature_bin));
    // A cancellation that came before the backend call existed.
    if (ctx_.IsCancelled()) client_ctx_.TryCancel();

    if (!route_->client_streaming && !route_->server_streaming) {
      unary_ = stub->PrepareUnaryCall(&client_ctx_, method_, first_, cq_);
      unary_->StartCall();
      unary_->Finish(&out_, &upstream_status_, Started(Op::kUnaryDone));
      return;
    }
    upstream_ = stub->PrepareCall(&client_ctx_, method_, cq_);
    upstream_->StartCall(Started(Op::kUpStart));
  }

  // A call to the backend inside this process (unary only: GatewayAdmin).
  void StartLocal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (route_->client_streaming || route_->server_streaming) {
      return Complete(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "streaming is not served locally"));
    }
    ++pending_;  // the local call's answer
    deps_.local->CallAsync(method_, principal_, first_, [this](grpc::Status status, std::string response) {
      bool last = false;
      {
        absl::MutexLock lock(&mu_);
        if (status.ok()) {
          grpc::Slice slice(response);
          out_ = grpc::ByteBuffer(&slice, 1);
        }
        Complete(status, status.ok());
        last = --pending_ == 0;
      }
      if (last) delete this;
    });
  }

  void UpstreamStarted() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (route_->client_streaming) {
      stream_.Read(&in_, Started(Op::kRead));
    } else {
      upstream_->Write(first_, grpc::WriteOptions().set_last_message(), Started(Op::kUpWrite));
    }
    // Headers go to the caller as soon as the backend sends them (a watch
    // may send no message for a long time); messages follow after them.
    upstream_->ReadInitialMetadata(Started(Op::kUpMetadata));
  }

  void StartUpstreamRead() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { upstream_->Read(&out_, Started(Op::kUpRead)); }

  // The backend has ended the call (or could not be reached): its status.
  void UpstreamFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (upstream_finishing_) return;
    upstream_finishing_ = true;
    upstream_->Finish(&upstream_status_, Started(Op::kUpFinish));
  }

  // A message from the caller (client streams and reflection), or its end.
  void Read(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reflection_) return ReflectionRead(ok);
    if (health_) return HealthRead(ok);
    if (watch_) return WatchRead(ok);
    if (finishing_ || upstream_finishing_) return;
    if (!ok) {
      if (!ctx_.IsCancelled()) upstream_->WritesDone(Started(Op::kUpWritesDone));
      return;
    }
    if (!saw_first_stream_message_) {
      saw_first_stream_message_ = true;
      resource_ = state_->resource.Read(in_);
    }
    upstream_->Write(in_, Started(Op::kUpWrite));
  }

  // A message has gone to the caller.
  void Written(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (watch_) {
      watch_writing_ = false;
      if (!ok) return EndWatch(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return WatchSend();
    }
    if (reflection_) {
      if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      stream_.Read(&in_, Started(Op::kRead));
      return;
    }
    if (ok) return StartUpstreamRead();
    client_ctx_.TryCancel();  // the caller is gone; the backend's status ends the call
    UpstreamFinish();
  }

  void HealthRead(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
    absl::StatusOr<std::string> answer = proxy_->health().Check(BytesOf(in_));
    if (!answer.ok()) return Finish(ToGrpcStatus(answer.status()));
    grpc::Slice slice(*answer);
    out_ = grpc::ByteBuffer(&slice, 1);
    finishing_ = true;
    stream_.WriteAndFinish(out_, grpc::WriteOptions(), grpc::Status::OK, Started(Op::kFinish));
  }

  // Health Watch: the status now, then every change, until the caller
  // leaves or the gateway shuts down (health.h).
  void WatchRead(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
    absl::StatusOr<std::string> service = HealthService::ServiceOf(BytesOf(in_));
    if (!service.ok()) return Finish(ToGrpcStatus(service.status()));
    watch_service_ = *std::move(service);
    watcher_ = std::make_shared<HealthService::Watcher>();
    proxy_->health().AddWatcher(watcher_);
    watcher_->Arm(cq_, Started(Op::kHealthChanged));
    WatchSend();
  }

  void WatchSend() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (watch_writing_ || finishing_) return;
    const int status = proxy_->health().StatusOf(watch_service_);
    if (status != watch_sent_) {
      watch_sent_ = status;
      watch_writing_ = true;
      grpc::Slice slice(HealthService::Response(status));
      out_ = grpc::ByteBuffer(&slice, 1);
      stream_.Write(out_, Started(Op::kWrite));
      return;
    }
    if (proxy_->health().shutting_down()) {
      EndWatch(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the gateway is shutting down"));
    }
  }

  void EndWatch(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (watcher_ != nullptr) {
      proxy_->health().RemoveWatcher(watcher_.get());
      watcher_->Wake();  // its alarm's event is the last one it sends this call
    }
    Finish(status);
  }

  void ReflectionRead(bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ok) return Finish(grpc::Status::OK);  // the client half-closed: the stream is over
    absl::StatusOr<std::string> answer = proxy_->reflection().Answer(BytesOf(in_));
    if (!answer.ok()) {
      return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(answer.status().message())));
    }
    grpc::Slice slice(*answer);
    out_ = grpc::ByteBuffer(&slice, 1);
    stream_.Write(out_, Started(Op::kWrite));
  }

  grpc::Status BackendStatus(const grpc::Status& status) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return StatusForCaller(status, route_->backend, cancelled_by_caller_);
  }

  void ForwardTrailingMetadata() {
    for (const auto& [key, value] : client_ctx_.GetServerTrailingMetadata()) {
      if (ForwardableResponseKey(View(key))) ctx_.AddTrailingMetadata(std::string(View(key)), std::string(View(value)));
    }
  }

  void ForwardInitialMetadata() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (metadata_forwarded_) return;
    metadata_forwarded_ = true;
    for (const auto& [key, value] : client_ctx_.GetServerInitialMetadata()) {
      if (ForwardableResponseKey(View(key))) ctx_.AddInitialMetadata(std::string(View(key)), std::string(View(value)));
    }
  }

  // Hands over the audit record, counts the call and finishes it, with the
  // unary response in the same batch when `with_response`.
  void Complete(const grpc::Status& status, bool with_response = false) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = deps_.clock->Now();
    const int64_t latency_us = absl::ToInt64Microseconds(now - start_);
    AuditRecord record;
    record.mutable_time()->set_seconds(absl::ToUnixSeconds(start_));
    record.mutable_time()->set_nanos(static_cast<int32_t>(absl::ToUnixNanos(start_) % 1000000000));
    record.set_principal_id(principal_.id());
    record.set_method(method_);
    record.set_resource(std::move(resource_));
    record.set_status_code(static_cast<int>(status.error_code()));
    record.set_latency_us(latency_us);
    record.set_request_id(request_id_);
    record.set_peer(ctx_.peer());
    deps_.audit->Record(std::move(record));

    proxy_->Observe(route_, static_cast<int>(status.error_code()), static_cast<double>(latency_us) / 1e6);
    // Every call is in the audit log (and the backend's own access log); the
    // process log gets the refused and failed ones, where an operator looks.
    // A JSON line per successful call cost more than the rest of the proxy.
    if (!status.ok()) {
      log::ScopedTrace trace(traceparent_);
      log::Info("rpc", {{"method", method_},
                        {"code", StatusCodeName(static_cast<int>(status.error_code()))},
                        {"message", status.error_message()},
                        {"latency_ms", static_cast<double>(latency_us) / 1000.0},
                        {"request_id", request_id_},
                        {"principal", principal_.id()}});
    }
    if (with_response) {
      finishing_ = true;
      stream_.WriteAndFinish(out_, grpc::WriteOptions(), status, Started(Op::kFinish));
    } else {
      Finish(status);
    }
  }

  void Finish(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    stream_.Finish(status, Started(Op::kFinish));
  }

  Proxy* const proxy_;
  const ProxyDeps& deps_;
  grpc::ServerCompletionQueue* const cq_;
  std::array<Tag, kOps> tags_;
  grpc::GenericServerContext ctx_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ClientContext client_ctx_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> upstream_;
  grpc::Status upstream_status_;
  bool cancelled_by_caller_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 1;  // the request
  bool admit_ ABSL_GUARDED_BY(mu_) = false;
  bool reflection_ = false;
  bool health_ = false;
  bool watch_ = false;
  bool started_ = false;
  std::shared_ptr<HealthService::Watcher> watcher_;
  std::string watch_service_;
  int watch_sent_ = 0;  // the last status sent to a watcher
  bool watch_writing_ = false;
  absl::Time start_;
  std::string method_;
  std::string request_id_;
  std::string resource_;
  std::string traceparent_;
  const MethodRoute* route_ = nullptr;
  const Proxy::RouteState* state_ = nullptr;
  Principal principal_;
  bool saw_first_stream_message_ = false;
  bool metadata_forwarded_ = false;
  bool upstream_finishing_ = false;
  bool finishing_ = false;

  grpc::ByteBuffer first_;  // the single request of a unary / server-streaming call
  grpc::ByteBuffer in_;     // caller -> backend, client streams
  grpc::ByteBuffer out_;    // backend -> caller
};

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool AllZero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// What reflection lists: every service with a route, and health.
std::vector<std::string> PublicServices(const RoleTable& roles) {
  std::vector<std::string> services = {"grpc.health.v1.Health"};
  for (const MethodRoute& route : roles.routes()) services.push_back(route.service);
  return services;  // ServerReflection sorts and de-duplicates
}

}  // namespace

Proxy::Proxy(ProxyDeps deps, std::map<std::string, std::shared_ptr<grpc::Channel>> backends, ProxyOptions options)
    : deps_(deps),
      options_(options),
      signatures_(deps.signer, deps.clock, options.principal_ttl),
      reflection_(PublicServices(*deps.roles)) {
  for (auto& [name, channel] : backends) {
    if (channel) stubs_[name] = std::make_unique<grpc::GenericStub>(channel);
  }
  auto add = [this](const MethodRoute* route, const std::string& method) {
    auto m = std::make_unique<RouteState>();
    m->method = method;
    m->latency = &metrics::DefaultRegistry().GetHistogram("medkoord_gateway_call_seconds",
                                                          "Latency of calls through the gateway", {{"method", method}});
    if (route != nullptr) m->resource = ResourceFieldReader(route->input, route->audit_resource_field);
    routes_[route] = std::move(m);
  };
  // Unknown methods are counted under one label, so callers cannot blow up
  // the metric's cardinality.
  add(nullptr, "unknown");
  for (const MethodRoute& route : deps_.roles->routes()) add(&route, route.full_name);
}

const Proxy::RouteState* Proxy::StateFor(const MethodRoute* route) const {
  auto it = routes_.find(route);
  return it == routes_.end() ? nullptr : it->second.get();
}

void Proxy::Observe(const MethodRoute* route, int code, double seconds) const {
  auto it = routes_.find(route);
  if (it == routes_.end()) return;
  RouteState& m = *it->second;
  if (code < 0 || code >= static_cast<int>(m.calls.size())) code = 2;  // UNKNOWN
  metrics::Counter* counter = m.calls[code].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // The registry returns the same instrument for the same labels, so a race
    // here stores the same pointer twice.
    counter = &metrics::DefaultRegistry().GetCounter("medkoord_gateway_calls_total",
                                                     "Calls through the gateway, by method and status code",
                                                     {{"method", m.method}, {"code", StatusCodeName(code)}});
    m.calls[code].store(counter, std::memory_order_release);
  }
  counter->Inc();
  m.latency->Observe(seconds);
}

grpc::GenericStub* Proxy::StubFor(const std::string& backend) const {
  auto it = stubs_.find(backend);
  return it == stubs_.end() ? nullptr : it->second.get();
}

Proxy::~Proxy() { Stop(); }

void Proxy::RegisterOn(grpc::ServerBuilder& builder) {
  builder.RegisterAsyncGenericService(&service_);
  for (int i = 0; i < std::max(1, options_.queues); ++i) cqs_.push_back(builder.AddCompletionQueue());
}

void Proxy::Start() {
  for (auto& cq : cqs_) {
    // Calls waiting for the next caller on each queue; every call that
    // starts requests its successor.
    for (int i = 0; i < kRequestsPerQueue; ++i) new ProxyCall(this, cq.get());
    const int per_queue = options_.threads_per_queue > 0
                              ? options_.threads_per_queue
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    for (int i = 0; i < per_queue; ++i) {
      threads_.emplace_back([this, cq = cq.get()] { Serve(cq); });
    }
  }
}

void Proxy::Serve(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  if (options_.busy_poll <= absl::ZeroDuration()) {
    while (cq->Next(&tag, &ok)) ProxyCall::Handle(tag, ok);
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto window = absl::ToChronoNanoseconds(options_.busy_poll);
  auto poll_until = Clock::time_point::min();
  for (;;) {
    if (Clock::now() < poll_until && in_flight_.load(std::memory_order_relaxed) <= kBusyPollMaxInFlight) {
      // A zero deadline polls the sockets (epoll_wait with no timeout) and
      // returns at once.
      const auto next = cq->AsyncNext(&tag, &ok, gpr_time_0(GPR_CLOCK_MONOTONIC));
      if (next == grpc::CompletionQueue::TIMEOUT) continue;
      if (next == grpc::CompletionQueue::SHUTDOWN) return;
    } else if (!cq->Next(&tag, &ok)) {
      return;
    }
    ProxyCall::Handle(tag, ok);
    poll_until = Clock::now() + window;
  }
}

void Proxy::Stop() {
  if (stopped_.exchange(true)) return;
  {
    // The server has shut down, so no call starts any more; the last ones
    // may still be collecting their backend's status on these queues.
    absl::MutexLock lock(&live_mu_);
    live_mu_.AwaitWithTimeout(absl::Condition(+[](int* live) { return *live == 0; }, &live_), absl::Seconds(30));
  }
  for (auto& cq : cqs_) cq->Shutdown();
  for (std::thread& t : threads_) t.join();
}

void Proxy::CallStarted() {
  absl::MutexLock lock(&live_mu_);
  ++live_;
  in_flight_.store(live_, std::memory_order_relaxed);
}

void Proxy::CallEnded() {
  absl::MutexLock lock(&live_mu_);
  --live_;
  in_flight_.store(live_, std::memory_order_relaxed);
}

grpc::Status StatusForCaller(const grpc::Status& status, std::string_view backend, bool cancelled_by_caller) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && status.error_message().empty()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat(std::string(backend), " is unavailable"),
                        status.error_details());
  }
  if (status.error_code() == grpc::StatusCode::CANCELLED && !cancelled_by_caller) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat(std::string(backend), " ended the call without answering (shutting down); retry"),
                        status.error_details());
  }
  return status;
}

std::string ApiKeyFromMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  const std::string value = Find(metadata, "authorization");
  if (value.empty()) return "";
  // A malformed header must not fall back to the certificate: it is a
  // credential that was meant and is wrong.
  return BearerToken(value).value_or("\x01malformed");
}

std::string TraceparentFor(std::string_view incoming, std::string_view request_id) {
  // W3C Trace Context: version "-" trace-id (32 hex) "-" parent-id (16 hex)
  // "-" flags. A valid one is passed on unchanged; otherwise the gateway
  // starts a trace, reusing the request id as trace id when it has that form
  // so that logs join on either.
  if (incoming.size() >= 55 && incoming[2] == '-' && incoming[35] == '-' && incoming[52] == '-' &&
      (incoming.size() == 55 || incoming[55] == '-')) {
    const std::string_view version = incoming.substr(0, 2), trace = incoming.substr(3, 32),
                           parent = incoming.substr(36, 16), flags = incoming.substr(53, 2);
    if (IsLowerHex(version) && version != "ff" && IsLowerHex(trace) && !AllZero(trace) && IsLowerHex(parent) &&
        !AllZero(parent) && IsLowerHex(flags) && (version != "00" || incoming.size() == 55)) {
      return std::string(incoming);
    }
  }
  std::string trace_id = request_id.size() == 32 && IsLowerHex(request_id) && !AllZero(request_id)
                             ? std::string(request_id)
                             : NewRequestId();
  std::string parent_id = NewRequestId().substr(0, 16);
  if (AllZero(parent_id)) parent_id[15] = '1';
  return absl::StrCat("00-", trace_id, "-", parent_id, "-01");
}

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng();
  const uint64_t b = rng();
  std::string bytes(16, '\0');
  for (int i = 0; i < 8; ++i) {
    bytes[i] = static_cast<char>(a >> (8 * i));
    bytes[8 + i] = static_cast<char>(b >> (8 * i));
  }
  return absl::BytesToHexString(bytes);
}

}  // namespace medkoord::gateway
