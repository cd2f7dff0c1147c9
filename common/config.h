#pragma once
// Settings come from flags (`--db_url=...`) or, when a flag is absent, from
// the environment (`MEDKOORD_DB_URL`). A missing or malformed setting stops
// start-up with one clear line naming it (see Config::Finish).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace medkoord {

class Config {
 public:
  // `env` is injectable for tests; by default the process environment.
  Config(int argc, char** argv);
  Config(std::vector<std::string> args, std::map<std::string, std::string> env);

  // Each getter records a problem instead of failing, so that Finish() can
  // report every bad setting at once.
  std::string String(const std::string& name, std::optional<std::string> fallback = std::nullopt);
  int64_t Int(const std::string& name, std::optional<int64_t> fallback = std::nullopt);
  bool Bool(const std::string& name, std::optional<bool> fallback = std::nullopt);
  absl::Duration Duration(const std::string& name, std::optional<absl::Duration> fallback = std::nullopt);
  // A secret: the value of `--<name>_file` / `MEDKOORD_<NAME>_FILE` (file
  // content, trailing newline stripped), else `MEDKOORD_<NAME>` from the
  // environment. Never taken from a flag value, so it never shows in `ps`.
  std::string Secret(const std::string& name, bool required = true);

  // OK, or FAILED_PRECONDITION whose message names every missing, malformed
  // or unknown setting ("config: --db_url / MEDKOORD_DB_URL is required").
  absl::Status Finish();

  static std::string EnvName(const std::string& name);  // db_url -> MEDKOORD_DB_URL

 private:
  std::optional<std::string> Lookup(const std::string& name);
  void Problem(const std::string& name, const std::string& what);

  std::map<std::string, std::string> flags_;
  std::map<std::string, std::string> env_;
  std::map<std::string, bool> used_;
  std::vector<std::string> problems_;
};

}  // namespace medkoord
