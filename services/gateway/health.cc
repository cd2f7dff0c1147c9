#include "services/gateway/health.h"

#include <algorithm>
#include <chrono>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "absl/strings/str_cat.h"

namespace medkoord::gateway {

namespace pb = google::protobuf;
using pb::internal::WireFormatLite;

void HealthService::Watcher::Arm(grpc::CompletionQueue* cq, void* tag) {
  absl::MutexLock lock(&mu_);
  alarm_.Set(cq, std::chrono::system_clock::time_point::max(), tag);
}

void HealthService::Watcher::Wake() {
  absl::MutexLock lock(&mu_);
  alarm_.Cancel();  // a no-op when not armed
}

void HealthService::SetServing(bool serving) {
  if (serving_.exchange(serving) != serving) WakeAll();
}

void HealthService::Shutdown() {
  serving_ = false;
  shutting_down_ = true;
  WakeAll();
}

void HealthService::WakeAll() {
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    watchers = watchers_;
  }
  for (const auto& w : watchers) w->Wake();
}

void HealthService::AddWatcher(const std::shared_ptr<Watcher>& watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.push_back(watcher);
}

void HealthService::RemoveWatcher(const Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(std::remove_if(watchers_.begin(), watchers_.end(),
                                 [watcher](const std::shared_ptr<Watcher>& w) { return w.get() == watcher; }),
                  watchers_.end());
}

absl::StatusOr<std::string> HealthService::ServiceOf(std::string_view request) {
  // HealthCheckRequest { string service = 1; }
  pb::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(request.data()), static_cast<int>(request.size()));
  std::string service;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      uint32_t length = 0;
      if (!in.ReadVarint32(&length) || !in.ReadString(&service, static_cast<int>(length))) break;
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      break;
    }
  }
  if (!in.ConsumedEntireMessage()) return absl::InvalidArgumentError("health check request does not parse");
  return service;
}

int HealthService::StatusOf(std::string_view service) const {
  if (!service.empty()) return kServiceUnknown;
  return serving() ? kServing : kNotServing;
}

std::string HealthService::Response(int status) {
  // HealthCheckResponse { ServingStatus status = 1; }
  return std::string{static_cast<char>(WireFormatLite::MakeTag(1, WireFormatLite::WIRETYPE_VARINT)),
                     static_cast<char>(status)};
}

absl::StatusOr<std::string> HealthService::Check(std::string_view request) const {
  absl::StatusOr<std::string> service = ServiceOf(request);
  if (!service.ok()) return service.status();
  if (!service->empty()) return absl::NotFoundError(absl::StrCat("unknown service ", *service));
  return Response(StatusOf(""));
}

}  // namespace medkoord::gateway
