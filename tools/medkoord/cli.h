#pragma once
// Shared plumbing of the `medkoord` CLI: argument parsing, the connection to
// the gateway, exit codes, output. Each command group is one .cc file.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tools/medkoord/settings.h"

namespace medkoord::cli {

// Exit codes: scripts can tell a typo from a refusal from an outage.
enum ExitCode : int {
  kOk = 0,
  kPartial = 1,      // the call worked but some input was rejected (import rows)
  kUsage = 2,        // bad command line or settings
  kDenied = 3,       // UNAUTHENTICATED / PERMISSION_DENIED
  kServerError = 4,  // UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...
  kRejected = 5,     // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION
};

int ExitCodeFor(grpc::StatusCode code);

// `--name=value`, `--name value`, `--flag` (known booleans) and positionals.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>> flags;

  bool Has(const std::string& name) const { return flags.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  bool Bool(const std::string& name) const;
  // Flags that a command did not consume, for "unknown flag" errors.
  std::set<std::string> used;
};

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv);

// One invocation: settings, channel, output mode.
class Cli {
 public:
  Cli(Args args, Settings settings) : args_(std::move(args)), settings_(std::move(settings)) {}

  Args& args() { return args_; }
  const Settings& settings() const { return settings_; }
  bool json() const { return args_.Bool("json"); }

  // Connects lazily: TLS with the CA file when one is set, else plaintext.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel();
  // Deadline, credentials, request id.
  void Prepare(grpc::ClientContext& ctx, absl::Duration timeout = absl::Seconds(30)) const;

  // Prints the error (with field violations) and returns its exit code.
  int Fail(const grpc::Status& status) const;
  int Usage(const std::string& message) const;

  // Protobuf message as JSON (proto field names).
  static std::string ToJson(const google::protobuf::Message& message, bool pretty);

 private:
  Args args_;
  Settings settings_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Command groups.
int RunApplications(Cli& cli);  // medkoord applications ...
int RunReport(Cli& cli);        // medkoord report annual ...
int RunAdmin(Cli& cli);         // medkoord admin ...
// medkoord <service> <method> [--field=value ...]: any public method, from descriptors.
int RunGeneric(Cli& cli, const std::string& service, bool* handled);
void PrintGenericHelp(const std::string& service);

// Sets request fields from `--field.path=value` flags (kebab or snake case);
// `prefix` is prepended to each path (e.g. "application."). Reports every
// bad flag at once.
absl::Status SetFieldsFromFlags(Args& args, google::protobuf::Message* message, const std::string& prefix,
                                const std::set<std::string>& skip);
absl::Status SetField(google::protobuf::Message* message, const std::string& path, const std::string& value);

// "ListApplications" <-> "list-applications".
std::string Kebab(const std::string& camel);

}  // namespace medkoord::cli
