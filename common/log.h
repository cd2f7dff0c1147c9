#pragma once
// Structured logging: one JSON object per line on stderr. Never log request
// bodies or patient identifiers; log names, codes and counts.

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "nlohmann/json.hpp"

namespace medkoord::log {

enum class Level { kDebug, kInfo, kWarning, kError };

// Fields beyond `ts`, `level`, `service` and `msg`.
using Fields = nlohmann::json;

// Sets the `service` field of every line and the minimum level.
void Init(std::string service_name, Level min_level = Level::kInfo);

void Write(Level level, std::string_view msg, const Fields& fields = Fields::object());
inline void Info(std::string_view msg, const Fields& f = Fields::object()) { Write(Level::kInfo, msg, f); }
inline void Warn(std::string_view msg, const Fields& f = Fields::object()) { Write(Level::kWarning, msg, f); }
inline void Error(std::string_view msg, const Fields& f = Fields::object()) { Write(Level::kError, msg, f); }
inline void Debug(std::string_view msg, const Fields& f = Fields::object()) { Write(Level::kDebug, msg, f); }

// The access log's line for one RPC (common/server.cc): exactly what
// Info("rpc", {{"method", ...}, {"code", ...}, {"latency_ms", ...},
// {"request_id", ...}, {"principal", ...}}) writes within
// ScopedTrace(traceparent), formatted without building a JSON object, since
// every call of every service writes one.
void RpcLine(std::string_view method, std::string_view code, double latency_ms, std::string_view request_id,
             std::string_view principal, std::string_view traceparent);

// The W3C trace context of the current call, if any; written to every line
// logged on this thread while set (see ScopedTrace).
class ScopedTrace {
 public:
  explicit ScopedTrace(std::string traceparent);
  ~ScopedTrace();
  ScopedTrace(const ScopedTrace&) = delete;
  ScopedTrace& operator=(const ScopedTrace&) = delete;

 private:
  std::string previous_;
};
const std::string& CurrentTraceparent();

}  // namespace medkoord::log
