#include "common/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace medkoord {
namespace {

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(kv.substr(0, eq));
    if (key.rfind("MEDKOORD_", 0) == 0) env.emplace(key, std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::vector<std::string> ArgsOf(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  return args;
}

}  // namespace

Config::Config(int argc, char** argv) : Config(ArgsOf(argc, argv), ProcessEnvironment()) {}

Config::Config(std::vector<std::string> args, std::map<std::string, std::string> env) : env_(std::move(env)) {
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (!absl::ConsumePrefix(&a, "--")) {
      problems_.push_back(absl::StrCat("unexpected argument '", a, "' (settings are --name=value)"));
      continue;
    }
    auto eq = a.find('=');
    if (eq == std::string_view::npos) {
      // `--flag value` or a bare boolean `--flag`.
      if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
        flags_[std::string(a)] = args[++i];
      } else {
        flags_[std::string(a)] = "true";
      }
    } else {
      flags_[std::string(a.substr(0, eq))] = std::string(a.substr(eq + 1));
    }
  }
}

std::string Config::EnvName(const std::string& name) {
  return absl::StrCat("MEDKOORD_", absl::AsciiStrToUpper(name));
}

std::optional<std::string> Config::Lookup(const std::string& name) {
  used_[name] = true;
  if (auto it = flags_.find(name); it != flags_.end()) return it->second;
  if (auto it = env_.find(EnvName(name)); it != env_.end()) return it->second;
  return std::nullopt;
}

void Config::Problem(const std::string& name, const std::string& what) {
  problems_.push_back(absl::StrCat("--", name, " / ", EnvName(name), " ", what));
}

std::string Config::String(const std::string& name, std::optional<std::string> fallback) {
  if (auto v = Lookup(name)) return *v;
  if (fallback) return *fallback;
  Problem(name, "is required");
  return "";
}

int64_t Config::Int(const std::string& name, std::optional<int64_t> fallback) {
  auto v = Lookup(name);
  if (!v) {
    if (fallback) return *fallback;
    Problem(name, "is required");
    return 0;
  }
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out)) {
    Problem(name, absl::StrCat("must be an integer, got '", *v, "'"));
    return fallback.value_or(0);
  }
  return out;
}

bool Config::Bool(const std::string& name, std::optional<bool> fallback) {
  auto v = Lookup(name);
  if (!v) {
    if (fallback) return *fallback;
    Problem(name, "is required");
    return false;
  }
  bool out = false;
  if (!absl::SimpleAtob(*v, &out)) {
    Problem(name, absl::StrCat("must be true or false, got '", *v, "'"));
    return fallback.value_or(false);
  }
  return out;
}

absl::Duration Config::Duration(const std::string& name, std::optional<absl::Duration> fallback) {
  auto v = Lookup(name);
  if (!v) {
    if (fallback) return *fallback;
    Problem(name, "is required");
    return absl::ZeroDuration();
  }
  absl::Duration out;
  if (!absl::ParseDuration(*v, &out) || out < absl::ZeroDuration()) {
    Problem(name, absl::StrCat("must be a duration like 500ms or 20s, got '", *v, "'"));
    return fallback.value_or(absl::ZeroDuration());
  }
  return out;
}

std::string Config::Secret(const std::string& name, bool required) {
  const std::string file_setting = name + "_file";
  if (auto path = Lookup(file_setting)) {
    std::ifstream in(*path, std::ios::binary);
    if (!in) {
      Problem(file_setting, absl::StrCat("names a file that cannot be read: ", *path));
      return "";
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string value = ss.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    if (value.empty()) Problem(file_setting, absl::StrCat("names an empty file: ", *path));
    return value;
  }
  used_[name] = true;
  // Never from a flag: a flag value is visible to every user through `ps`.
  if (flags_.count(name) > 0) {
    problems_.push_back(absl::StrCat("--", name, " is a secret: give --", file_setting, " or ",
                                     EnvName(name), " instead"));
    return "";
  }
  if (auto it = env_.find(EnvName(name)); it != env_.end() && !it->second.empty()) return it->second;
  if (required) {
    problems_.push_back(absl::StrCat("--", file_setting, " / ", EnvName(file_setting), " / ", EnvName(name),
                                     " is required"));
  }
  return "";
}

absl::Status Config::Finish() {
  for (const auto& [name, value] : flags_) {
    if (!used_.count(name)) problems_.push_back(absl::StrCat("unknown setting --", name));
  }
  if (problems_.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("config: ", absl::StrJoin(problems_, "; ")));
}

}  // namespace medkoord
