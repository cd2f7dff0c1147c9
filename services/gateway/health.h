#pragma once
// grpc.health.v1.Health on the gateway's listener, answered by the proxy's
// own threads. gRPC's default health service is a callback service, and any
// callback service makes gRPC 1.51 start "nexting" threads that poll the same
// sockets as the proxy's completion-queue threads: every event one of them
// picked up was handed over to a proxy thread, a wake-up more per call.
//
// Check answers at once. A Watch stream (the proxy's call) registers a
// Watcher: a grpc::Alarm armed far in the future on the call's completion
// queue; a change of status cancels every watcher's alarm, which delivers the
// call an event on its own queue, and the call then sends the status it
// finds. So nothing here runs a call's code on a foreign thread.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace medkoord::gateway {

class HealthService {
 public:
  static constexpr std::string_view kCheck = "/grpc.health.v1.Health/Check";
  static constexpr std::string_view kWatch = "/grpc.health.v1.Health/Watch";
  // grpc.health.v1.HealthCheckResponse.ServingStatus
  static constexpr int kServing = 1;
  static constexpr int kNotServing = 2;
  static constexpr int kServiceUnknown = 3;

  // One Watch stream's wake-up.
  class Watcher {
   public:
    // Arms the alarm: `tag` comes out of `cq` (ok = false) at the next change.
    void Arm(grpc::CompletionQueue* cq, void* tag);
    // Fires an armed alarm now (a change, shutdown, or the stream's end).
    void Wake();

   private:
    absl::Mutex mu_;
    grpc::Alarm alarm_ ABSL_GUARDED_BY(mu_);
  };

  void SetServing(bool serving);
  bool serving() const { return serving_.load(); }
  // Watch streams send NOT_SERVING and end; Check answers NOT_SERVING.
  void Shutdown();
  bool shutting_down() const { return shutting_down_.load(); }

  void AddWatcher(const std::shared_ptr<Watcher>& watcher);
  void RemoveWatcher(const Watcher* watcher);

  // The `service` of a serialized HealthCheckRequest; INVALID_ARGUMENT if it
  // does not parse.
  static absl::StatusOr<std::string> ServiceOf(std::string_view request);
  // The status for `service`: the gateway's for "" (the whole server),
  // kServiceUnknown for any named one.
  int StatusOf(std::string_view service) const;
  // A serialized HealthCheckResponse.
  static std::string Response(int status);

  // Check's answer: the serialized response, NOT_FOUND for a named service.
  absl::StatusOr<std::string> Check(std::string_view request) const;

 private:
  void WakeAll() ABSL_LOCKS_EXCLUDED(mu_);

  std::atomic<bool> serving_{false};
  std::atomic<bool> shutting_down_{false};
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace medkoord::gateway
