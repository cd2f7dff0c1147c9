#include "tools/medkoord/settings.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace medkoord::cli {

absl::StatusOr<std::map<std::string, std::string>> ParseEnvFile(const std::string& text, const std::string& path) {
  std::map<std::string, std::string> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.substr(0, 7) == "export ") line = absl::StripLeadingAsciiWhitespace(line.substr(7));
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": expected KEY=VALUE"));
    }
    absl::string_view value = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    out[std::string(absl::StripAsciiWhitespace(line.substr(0, eq)))] = std::string(value);
  }
  return out;
}

absl::StatusOr<Settings> ResolveSettings(const SettingsInputs& in) {
  Settings s;
  struct Field {
    const char* flag;
    const char* env;
    std::string* value;
    std::string* source;
  };
  Field fields[] = {{"addr", "MEDKOORD_ADDR", &s.addr, &s.addr_source},
                    {"api-key", "MEDKOORD_API_KEY", &s.api_key, &s.api_key_source},
                    {"ca-file", "MEDKOORD_CA_FILE", &s.ca_file, &s.ca_file_source}};
  bool missing = false;
  for (Field& f : fields) {
    if (auto it = in.flags.find(f.flag); it != in.flags.end() && !it->second.empty()) {
      *f.value = it->second;
      *f.source = "flag";
    } else if (auto e = in.env.find(f.env); e != in.env.end() && !e->second.empty()) {
      *f.value = e->second;
      *f.source = "env";
    } else {
      missing = true;
    }
  }
  if (!missing || !in.read_file) return s;

  // The nearest .medkoord/local.env, from the current directory upwards.
  std::filesystem::path dir = std::filesystem::path(in.cwd).lexically_normal();
  while (true) {
    const std::filesystem::path candidate = dir / ".medkoord" / "local.env";
    if (auto text = in.read_file(candidate.string())) {
      auto vars = ParseEnvFile(*text, candidate.string());
      if (!vars.ok()) return vars.status();
      for (Field& f : fields) {
        if (!f.source->empty()) continue;
        auto it = vars->find(f.env);
        if (it == vars->end() || it->second.empty()) continue;
        std::string value = it->second;
        // A relative CA path is relative to the project, i.e. the env file's parent's parent.
        if (std::string(f.flag) == "ca-file" && !std::filesystem::path(value).is_absolute()) {
          value = (dir / value).lexically_normal().string();
        }
        *f.value = value;
        *f.source = candidate.string();
      }
      break;
    }
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return s;
}

}  // namespace medkoord::cli
