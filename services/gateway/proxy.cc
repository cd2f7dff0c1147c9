#include "services/gateway/proxy.h"

#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <atomic>
#include <chrono>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "services/gateway/api_key.h"

namespace medkoord::gateway {
namespace {

// Metadata the gateway never passes on: credentials, its own signed
// principal (a caller must not smuggle one in), and transport headers.
bool ForwardableRequestKey(std::string_view key) {
  return !(key.empty() || key[0] == ':' || key.starts_with("grpc-") || key == "authorization" ||
           key == "user-agent" || key == "te" || key == "content-type" || key == "host" ||
           key == kPrincipalMetadata || key == kSignatureMetadata || key == "x-request-id");
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

class ProxyCall final : public grpc::ServerGenericBidiReactor {
 public:
  ProxyCall(const Proxy* proxy, grpc::GenericCallbackServerContext* context)
      : proxy_(proxy), deps_(proxy->deps()), ctx_(context), upstream_(this), start_(deps_.clock->Now()) {
    method_ = ctx_->method();
    request_id_ = Find(ctx_->client_metadata(), "x-request-id");
    if (request_id_.empty()) request_id_ = NewRequestId();
    // The caller learns the id it can quote, also on errors.
    ctx_->AddInitialMetadata("x-request-id", request_id_);
    route_ = deps_.roles->Find(method_);
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
    absl::Status admitted = Admit();
    if (!admitted.ok()) {
      FinishEarly(ToGrpcStatus(admitted));
      return;
    }
    StartUpstream(/*single_request=*/false);
  }

  // Server side.
  void OnReadDone(bool ok) override {
    if (!upstream_started_) {  // the single request of a unary / server-streaming call
      if (!ok) {
        FinishEarly(ctx_->IsCancelled() ? grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the caller")
                                        : grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
        return;
      }
      resource_ = AuditResourceOf(*route_, first_);
      absl::Status admitted = Admit();
      if (!admitted.ok()) {
        FinishEarly(ToGrpcStatus(admitted));
        return;
      }
      StartUpstream(/*single_request=*/true);
      return;
    }
    // A message of a client stream (or its end).
    absl::MutexLock lock(&mu_);
    if (write_hold_released_) return;  // the backend already ended the call
    if (ok) {
      if (!saw_first_stream_message_) {
        saw_first_stream_message_ = true;
        resource_ = AuditResourceOf(*route_, in_);
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
    for (const auto& [key, value] : client_ctx_.GetServerTrailingMetadata()) {
      if (ForwardableResponseKey(View(key))) ctx_->AddTrailingMetadata(std::string(View(key)), std::string(View(value)));
    }
    grpc::Status out = status;
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && status.error_message().empty()) {
      out = grpc::Status(grpc::StatusCode::UNAVAILABLE, absl::StrCat(route_->backend, " is unavailable"),
                         status.error_details());
    }
    Complete(out);  // last use of `this`: OnDone may follow at once
  }

 private:
  absl::Status Admit() {
    PeerCertificate peer;
    if (auto auth = ctx_->auth_context()) peer = PeerCertificateOf(*auth);
    const std::string key = ApiKeyFromMetadata(ctx_->client_metadata());
    absl::StatusOr<Principal> principal = deps_.authenticator->Authenticate(key, peer);
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
    deps_.signer->Attach(client_ctx_, principal_, method_, proxy_->options().principal_ttl);

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

  void ForwardInitialMetadataLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    metadata_forwarded_ = true;
    for (const auto& [key, value] : client_ctx_.GetServerInitialMetadata()) {
      if (ForwardableResponseKey(View(key))) ctx_->AddInitialMetadata(std::string(View(key)), std::string(View(value)));
    }
  }

  void FinishEarly(const grpc::Status& status) { Complete(status); }

  void Complete(const grpc::Status& status) {
    const absl::Time now = deps_.clock->Now();
    const int64_t latency_us = absl::ToInt64Microseconds(now - start_);
    const char* code = StatusCodeName(static_cast<int>(status.error_code()));
    AuditRecord record;
    record.mutable_time()->set_seconds(absl::ToUnixSeconds(start_));
    record.mutable_time()->set_nanos(static_cast<int32_t>(absl::ToUnixNanos(start_) % 1000000000));
    record.set_principal_id(principal_.id());
    record.set_method(method_);
    record.set_resource(resource_);
    record.set_status_code(static_cast<int>(status.error_code()));
    record.set_latency_us(latency_us);
    record.set_request_id(request_id_);
    record.set_peer(ctx_->peer());
    deps_.audit->Record(std::move(record));

    proxy_->Observe(route_, static_cast<int>(status.error_code()), static_cast<double>(latency_us) / 1e6);
    log::Info("rpc", {{"method", method_},
                      {"code", code},
                      {"latency_ms", static_cast<double>(latency_us) / 1000.0},
                      {"request_id", request_id_},
                      {"principal", principal_.id()}});
    Finish(status);
  }

  const Proxy* proxy_;
  const ProxyDeps& deps_;
  grpc::GenericCallbackServerContext* ctx_;
  grpc::ClientContext client_ctx_;
  Upstream upstream_;
  const absl::Time start_;
  std::string method_;
  std::string request_id_;
  std::string resource_;
  const MethodRoute* route_ = nullptr;
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

}  // namespace

Proxy::Proxy(ProxyDeps deps, std::map<std::string, std::shared_ptr<grpc::Channel>> backends, ProxyOptions options)
    : deps_(deps), options_(options) {
  for (auto& [name, channel] : backends) {
    if (channel) stubs_[name] = std::make_unique<grpc::GenericStub>(channel);
  }
  auto add = [this](const MethodRoute* route, const std::string& method) {
    auto m = std::make_unique<RouteMetrics>();
    m->method = method;
    m->latency = &metrics::DefaultRegistry().GetHistogram("medkoord_gateway_call_seconds",
                                                          "Latency of calls through the gateway", {{"method", method}});
    metrics_[route] = std::move(m);
  };
  // Unknown methods are counted under one label, so callers cannot blow up
  // the metric's cardinality.
  add(nullptr, "unknown");
  for (const MethodRoute& route : deps_.roles->routes()) add(&route, route.full_name);
}

void Proxy::Observe(const MethodRoute* route, int code, double seconds) const {
  auto it = metrics_.find(route);
  if (it == metrics_.end()) return;
  RouteMetrics& m = *it->second;
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
  return new ProxyCall(this, context);
}

std::string ApiKeyFromMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  const std::string value = Find(metadata, "authorization");
  if (value.empty()) return "";
  // A malformed header must not fall back to the certificate: it is a
  // credential that was meant and is wrong.
  return BearerToken(value).value_or("\x01malformed");
}

std::string AuditResourceOf(const MethodRoute& route, const grpc::ByteBuffer& request) {
  if (route.input == nullptr) return "";
  const google::protobuf::Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(route.input);
  if (prototype == nullptr) return "";
  std::unique_ptr<google::protobuf::Message> message(prototype->New());
  grpc::ByteBuffer copy(request);
  grpc::ProtoBufferReader reader(&copy);
  if (!message->ParseFromZeroCopyStream(&reader)) return "";
  if (!route.audit_resource_field.empty()) return StringFieldByPath(*message, route.audit_resource_field);
  std::string name = StringFieldByPath(*message, "name");
  if (!name.empty()) return name;
  return StringFieldByPath(*message, "parent");
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
