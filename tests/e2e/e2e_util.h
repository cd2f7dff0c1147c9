#pragma once
// Helpers shared by the end-to-end tests: generic calls by method name with
// an empty or given request, and a snapshot of every service's stored rows.

#include <sys/types.h>

#include <map>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"

namespace medkoord::e2e {

struct CallResult {
  grpc::Status status;
  int messages = 0;
};

// Calls `method` (any kind of streaming) sending `request` once (none for a
// client stream when empty), reading every response, within `timeout`
// (InfiniteDuration: no deadline of the caller's own).
CallResult CallGeneric(grpc::Channel& channel, const std::string& method, const std::string& key,
                       const std::string& request, absl::Duration timeout, bool client_streaming);

// Table -> row count, for every table of every given database.
std::map<std::string, long> RowCounts(const std::map<std::string, std::string>& db_urls);

// A process's overall gRPC health (service ""), as a load balancer or a
// Kubernetes readiness probe sees it; kUnreachable when the check itself
// fails (process down, no answer within `timeout`).
enum class Health { kServing, kNotServing, kUnreachable };
Health CheckHealth(grpc::Channel& channel, absl::Duration timeout);
const char* HealthName(Health health);

// A plain HTTP GET on 127.0.0.1:port; returns status code and body.
std::pair<int, std::string> HttpGet(int port, const std::string& path, const std::string& authorization);

// `s` single-quoted for sh.
std::string ShellQuote(const std::string& s);

// CPU time (user + system) process `pid` has used so far; zero if it is gone.
absl::Duration ProcessCpu(pid_t pid);

// Runs `command` with sh; its exit code (-1 when it did not exit) and stdout.
std::pair<int, std::string> RunCommand(const std::string& command);

}  // namespace medkoord::e2e
