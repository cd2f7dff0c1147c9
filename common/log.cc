#include "common/log.h"

#include <cstdio>
#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace medkoord::log {
namespace {

struct State {
  std::mutex mu;
  std::string service = "medkoord";
  Level min_level = Level::kInfo;
};

State& GlobalState() {
  static State* state = new State();
  return *state;
}

thread_local std::string current_trace;

const char* LevelName(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}

}  // namespace

void Init(std::string service_name, Level min_level) {
  State& s = GlobalState();
  std::lock_guard<std::mutex> lock(s.mu);
  s.service = std::move(service_name);
  s.min_level = min_level;
}

void Write(Level level, std::string_view msg, const Fields& fields) {
  State& s = GlobalState();
  if (level < s.min_level) return;
  nlohmann::json line = nlohmann::json::object();
  line["ts"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  line["level"] = LevelName(level);
  line["service"] = s.service;
  line["msg"] = msg;
  if (!current_trace.empty()) line["traceparent"] = current_trace;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  // Invalid UTF-8 in a field must not throw out of the logger.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  std::lock_guard<std::mutex> lock(s.mu);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

ScopedTrace::ScopedTrace(std::string traceparent) : previous_(std::move(current_trace)) {
  current_trace = std::move(traceparent);
}

ScopedTrace::~ScopedTrace() { current_trace = std::move(previous_); }

const std::string& CurrentTraceparent() { return current_trace; }

}  // namespace medkoord::log
