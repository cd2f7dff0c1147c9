#pragma once
// A long-running helper of a service (outbox relay, LISTEN loop): started
// once the database is migrated, stopped before the pool goes away.

namespace medkoord {

class BackgroundTask {
 public:
  virtual ~BackgroundTask() = default;
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

}  // namespace medkoord
