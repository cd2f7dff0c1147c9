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

class ProxyCall;

// The call to the backend; lives inside ProxyCall.
class Upstream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit Upstream(ProxyCall* call) : call_(call) {}
  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  ProxyCall* call_;
};

// The call to the backend of a unary method: one batch out, one back.
class UnaryUpstream final : public grpc::ClientUnaryReactor {
 public:
  explicit UnaryUpstream(ProxyCall* call) : call_(call) {}
  void OnDone(const grpc::Status& status) override;

 private:
  ProxyCall* call_;
};

class ProxyCall final : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(const Proxy* proxy, grpc::GenericCallbackServerContext* context)
      : proxy_(proxy), deps_(proxy->deps()), ctx_(context), upstream_(this), unary_(this), start_(deps_.clock->Now()) {
    method_ = ctx_->method();
    request_id_ = Find(ctx_->client_metadata(), "x-request-id");
    if (request_id_.empty()) request_id_ = NewRequestId();
    // The caller learns the id it can quote, also on errors.
    ctx_->AddInitialMetadata("x-request-id", request_id_);
    traceparent_ = TraceparentFor(Find(ctx_->client_metadata(), "traceparent"), request_id_);
    route_ = deps_.roles->Find(method_);
    if (route_ != nullptr) state_ = proxy_->StateFor(route_);
    if (route_ == nullptr) {
      FinishEarly(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, absl::StrCat("unknown method ", method_)));
      return;
    }
    if (!route_->client_streaming) {
      // One request message: read it first so that the audit record names
      // the resource even for a refused call.
      StartRead(&first_);
      return;
    }
    Admit(/*single_request=*/false);
  }

  // Server side.
  void OnReadDone(bool ok) override {
    if (!upstream_started_) {  // the single request of a unary / server-streaming call
      if (!ok) {
        FinishEarly(ctx_->IsCancelled() ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the caller")
                                        : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
        return;
      }
      resource_ = state_->resource.Read(first_);
      Admit(/*single_request=*/true);
      return;
    }
    // A message of a client stream (or its end).
    absl::MutexLock lock(&mu_);
    if (write_hold_released_) return;  // the backend already ended the call
    if (ok) {
      if (!saw_first_stream_message_) {
        saw_first_stream_message_ = true;
        resource_ = state_->resource.Read(in_);
      }
      upstream_.StartWrite(&in_);
    } else {
      upstream_.StartWritesDone();
      write_hold_released_ = true;
      upstream_.RemoveHold();
    }
  }

  void OnWriteDone(bool ok) override {
    // A backend message has been written to the caller; fetch the next one.
    if (ok) {
      upstream_.StartRead(&out_);
    } else {
      client_ctx_.TryCancel();  // the caller is gone
    }
    upstream_.RemoveHold();
  }

  void OnCancel() override {
    if (upstream_started_) client_ctx_.TryCancel();
  }

  void OnDone() override { delete this; }

  // Upstream side.
  void UpstreamInitialMetadata(bool ok) {
    absl::MutexLock lock(&mu_);
    if (ok && !metadata_forwarded_) {
      ForwardInitialMetadataLocked();
      StartSendInitialMetadata();
    }
  }

  void UpstreamRead(bool ok) {
    if (!ok) {
      // The backend has finished. If the caller is still streaming to it,
      // stop forwarding so the call can complete and report its status.
      absl::MutexLock lock(&mu_);
      if (route_->client_streaming && !write_hold_released_) {
        write_hold_released_ = true;
        upstream_.RemoveHold();
      }
      return;
    }
    // Keep the backend call open until this message is handed on.
    upstream_.AddHold();
    {
      absl::MutexLock lock(&mu_);
      if (!metadata_forwarded_) ForwardInitialMetadataLocked();
    }
    StartWrite(&out_);
  }

  void UpstreamWrite(bool ok) {
    if (!route_->client_streaming) return;
    absl::MutexLock lock(&mu_);
    if (write_hold_released_) return;
    if (ok) {
      StartRead(&in_);
    } else {
      write_hold_released_ = true;
      upstream_.RemoveHold();
    }
  }

  void UpstreamDone(const grpc::Status& status) {
    ForwardTrailingMetadata();
    Complete(BackendStatus(status));  // last use of `this`: OnDone may follow at once
  }

  void UnaryDone(const grpc::Status& status) {
    // Initial metadata, the response and the status go back in one batch.
    {
      absl::MutexLock lock(&mu_);
      ForwardInitialMetadataLocked();
    }
    ForwardTrailingMetadata();
    Complete(BackendStatus(status), status.ok() ? &out_ : nullptr);
  }

 private:
  // Authenticates (without blocking this thread: a key cache miss answers on
  // a lookup thread), then rate limit and role table, then the backend call.
  void Admit(bool single_request) {
    const std::string key = ApiKeyFromMetadata(ctx_->client_metadata());
    PeerCertificate peer;
    if (key.empty()) {
      if (auto auth = ctx_->auth_context()) peer = PeerCertificateOf(*auth);
    }
    deps_.authenticator->AuthenticateAsync(key, peer, [this, single_request](absl::StatusOr<Principal> principal) {
      absl::Status admitted = Admitted(std::move(principal));
      if (!admitted.ok()) {
        FinishEarly(ToGrpcStatus(admitted));
        return;
      }
      StartUpstream(single_request);
    });
  }

  absl::Status Admitted(absl::StatusOr<Principal> principal) {
    if (!principal.ok()) return principal.status();
    principal_ = *std::move(principal);
    RETURN_IF_ERROR(deps_.rate_limiter->Acquire(principal_.id()));
    if (!deps_.roles->Allows(*route_, principal_)) {
      return absl::PermissionDeniedError(absl::StrCat("principal ", principal_.id(), " may not call ", method_));
    }
    return absl::OkStatus();
  }

  void StartUpstream(bool single_request) {
    grpc::GenericStub* stub = proxy_->StubFor(route_->backend);
    if (stub == nullptr) {
      FinishEarly(grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat("no address configured for ", route_->backend)));
      return;
    }
    auto deadline = ctx_->deadline();
    if (deadline == std::chrono::system_clock::time_point::max()) {
      deadline = absl::ToChronoTime(absl::Now() + proxy_->options().default_deadline);
    }
    client_ctx_.set_deadline(deadline);
    for (const auto& [key, value] : ctx_->client_metadata()) {
      if (ForwardableRequestKey(View(key))) client_ctx_.AddMetadata(std::string(View(key)), std::string(View(value)));
    }
    client_ctx_.AddMetadata("x-request-id", request_id_);
    client_ctx_.AddMetadata("traceparent", traceparent_);
    PrincipalSigner::Signed signed_principal = proxy_->signatures().Get(principal_, method_);
    client_ctx_.AddMetadata(kPrincipalMetadata, std::move(signed_principal.principal_bin));
    client_ctx_.AddMetadata(kSignatureMetadata, std::move(signed_principal.signature_bin));

    if (!route_->client_streaming && !route_->server_streaming) {
      upstream_started_ = true;
      stub->PrepareUnaryCall(&client_ctx_, method_, grpc::StubOptions(), &first_, &out_, &unary_);
      unary_.StartCall();
      return;
    }
    stub->PrepareBidiStreamingCall(&client_ctx_, method_, grpc::StubOptions(), &upstream_);
    upstream_started_ = true;
    if (single_request) {
      upstream_.StartWriteLast(&first_, grpc::WriteOptions());
    } else {
      // Held until the caller half-closes (or the backend ends the call), as
      // writes are started from the server side's reactions.
      upstream_.AddHold();
      {
        absl::MutexLock lock(&mu_);
        write_hold_released_ = false;
      }
      StartRead(&in_);
    }
    upstream_.StartRead(&out_);
    upstream_.StartCall();
  }

  grpc::Status BackendStatus(const grpc::Status& status) const {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && status.error_message().empty()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat(route_->backend, " is unavailable"),
                          status.error_details());
    }
    return status;
  }

  void ForwardTrailingMetadata() {
    for (const auto& [key, value] : client_ctx_.GetServerTrailingMetadata()) {
      if (ForwardableResponseKey(View(key))) ctx_->AddTrailingMetadata(std::string(View(key)), std::string(View(value)));
    }
  }

  void ForwardInitialMetadataLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (metadata_forwarded_) return;
    metadata_forwarded_ = true;
    for (const auto& [key, value] : client_ctx_.GetServerInitialMetadata()) {
      if (ForwardableResponseKey(View(key))) ctx_->AddInitialMetadata(std::string(View(key)), std::string(View(value)));
    }
  }

  void FinishEarly(const grpc::Status& status) { Complete(status); }

  // Hands over the audit record, counts the call and finishes it, with
  // `last_message` (a unary response) in the same batch when given.
  void Complete(const grpc::Status& status, const grpc::ByteBuffer* last_message = nullptr) {
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
    record.set_peer(ctx_->peer());
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
    if (last_message != nullptr) {
      StartWriteAndFinish(last_message, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  const Proxy* proxy_;
  const ProxyDeps& deps_;
  grpc::GenericCallbackServerContext* ctx_;
  grpc::ClientContext client_ctx_;
  Upstream upstream_;
  UnaryUpstream unary_;
  const absl::Time start_;
  std::string method_;
  std::string request_id_;
  std::string resource_;
  std::string traceparent_;
  const MethodRoute* route_ = nullptr;
  const Proxy::RouteState* state_ = nullptr;
  Principal principal_;
  std::atomic<bool> upstream_started_{false};
  bool saw_first_stream_message_ = false;

  grpc::ByteBuffer first_;  // the single request of a unary / server-streaming call
  grpc::ByteBuffer in_;     // caller -> backend, client streams
  grpc::ByteBuffer out_;    // backend -> caller

  absl::Mutex mu_;
  bool write_hold_released_ ABSL_GUARDED_BY(mu_) = true;
  bool metadata_forwarded_ ABSL_GUARDED_BY(mu_) = false;
};

void Upstream::OnReadInitialMetadataDone(bool ok) { call_->UpstreamInitialMetadata(ok); }
void Upstream::OnReadDone(bool ok) { call_->UpstreamRead(ok); }
void Upstream::OnWriteDone(bool ok) { call_->UpstreamWrite(ok); }
void Upstream::OnDone(const grpc::Status& status) { call_->UpstreamDone(status); }
void UnaryUpstream::OnDone(const grpc::Status& status) { call_->UnaryDone(status); }

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

grpc::ServerGenericBidiReactor* Proxy::CreateReactor(grpc::GenericCallbackServerContext* context) {
  if (ServerReflection::Serves(context->method())) return reflection_.NewCall();
  return new ProxyCall(this, context);
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
