#pragma once
// Where the CLI connects and as whom: each of addr, api key and CA file from
// the flag, else the environment (MEDKOORD_ADDR, MEDKOORD_API_KEY,
// MEDKOORD_CA_FILE), else `.medkoord/local.env` in the current directory or
// the nearest parent that has one (written by deploy/local for its demo
// principal; KEY=VALUE lines, # comments; a relative MEDKOORD_CA_FILE is relative
// to the folder that holds `.medkoord/`).

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace medkoord::cli {

struct Settings {
  std::string addr;
  std::string api_key;
  std::string ca_file;
  // Where each came from: "flag", "env", the local.env path, or "" if unset.
  std::string addr_source;
  std::string api_key_source;
  std::string ca_file_source;
};

struct SettingsInputs {
  std::map<std::string, std::string> flags;  // "addr", "api-key", "ca-file"
  std::map<std::string, std::string> env;    // the process environment
  std::string cwd;
  // Returns a file's content, or nullopt if it does not exist. Injected so
  // that resolution is testable without a file system.
  std::function<std::optional<std::string>(const std::string&)> read_file;
};

// INVALID_ARGUMENT for a malformed local.env line (naming file and line).
absl::StatusOr<Settings> ResolveSettings(const SettingsInputs& in);

// KEY=VALUE lines; quotes around a value are removed.
absl::StatusOr<std::map<std::string, std::string>> ParseEnvFile(const std::string& text, const std::string& path);

}  // namespace medkoord::cli
