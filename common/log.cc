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

constexpr nlohmann::json::error_handler_t kReplaceInvalidUtf8 = nlohmann::json::error_handler_t::replace;

std::string Timestamp() { return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()); }

void Emit(std::string& text) {
  text.push_back('\n');
  State& s = GlobalState();
  std::lock_guard<std::mutex> lock(s.mu);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

// Appends `value` as a JSON string exactly as nlohmann::json's dump (UTF-8
// kept, invalid UTF-8 replaced) writes it: ASCII is escaped here, anything
// else is left to nlohmann.
void AppendString(std::string& out, std::string_view value) {
  for (char c : value) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      out += nlohmann::json(std::string(value)).dump(-1, ' ', false, kReplaceInvalidUtf8);
      return;
    }
  }
  out.push_back('"');
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
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
  line["ts"] = Timestamp();
  line["level"] = LevelName(level);
  line["service"] = s.service;
  line["msg"] = msg;
  if (!current_trace.empty()) line["traceparent"] = current_trace;
  if (fields.is_object()) {
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  }
  // Invalid UTF-8 in a field must not throw out of the logger.
  std::string text = line.dump(-1, ' ', false, kReplaceInvalidUtf8);
  Emit(text);
}

void RpcLine(std::string_view method, std::string_view code, double latency_ms, std::string_view request_id,
             std::string_view principal, std::string_view traceparent) {
  State& s = GlobalState();
  if (Level::kInfo < s.min_level) return;
  // The keys in the order Write gives them (a JSON object's keys sorted).
  std::string text = "{\"code\":";
  text.reserve(320);
  AppendString(text, code);
  text += ",\"latency_ms\":";
  text += nlohmann::json(latency_ms).dump();
  text += ",\"level\":\"info\",\"method\":";
  AppendString(text, method);
  text += ",\"msg\":\"rpc\",\"principal\":";
  AppendString(text, principal);
  text += ",\"request_id\":";
  AppendString(text, request_id);
  text += ",\"service\":";
  AppendString(text, s.service);
  if (!traceparent.empty()) {
    text += ",\"traceparent\":";
    AppendString(text, traceparent);
  }
  text += ",\"ts\":\"";
  text += Timestamp();
  text += "\"}";
  Emit(text);
}

ScopedTrace::ScopedTrace(std::string traceparent) : previous_(std::move(current_trace)) {
  current_trace = std::move(traceparent);
}

ScopedTrace::~ScopedTrace() { current_trace = std::move(previous_); }

const std::string& CurrentTraceparent() { return current_trace; }

}  // namespace medkoord::log
