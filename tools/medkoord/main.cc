// medkoord: the command-line client of the gateway.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tools/medkoord/cli.h"
#include "tools/medkoord/settings.h"
#ifdef MEDKOORD_HAVE_RWD_ANALYSE
#include "services/rwd/analyse/analyse.h"
#endif

extern char** environ;

namespace {

using namespace medkoord::cli;

constexpr char kHelp[] = R"(medkoord: talk to the medkoord gateway

usage: medkoord [--addr HOST:PORT] [--api-key KEY] [--ca-file CA.pem] [--json] COMMAND ...

Settings come from the flags, else MEDKOORD_ADDR / MEDKOORD_API_KEY / MEDKOORD_CA_FILE,
else .medkoord/local.env in this directory or a parent (written by deploy/local).

  applications import FILE.csv [--validate-only]   bulk import (Forum export format), with progress
  applications submit --case_ref .. --region .. --submitted_on YYYY-MM-DD --drug_name .. --atc_code ..
                      --indication .. [--icd10 ..] --cancer yes|no --marketed_dk yes|no
                      --medicinraadet_status .. --ema_status ..
  applications list [--region SLUG] [--year YYYY] [--state open|decided|withdrawn] [--all]
  applications get NAME | withdraw NAME [--reason TEXT]
  applications export [--region SLUG] [--year YYYY] > cases.csv
  report annual --year YYYY [--json | --csv]        the Forum's annual report (table by default)
  admin keys create --principal ID --roles a,b [--region SLUG] | admin keys list | admin keys revoke NAME
  admin audit [--principal_id ID] [--method M] [--status_names S] [--all]
  analyse FILE.csv --time COL --event COL=V [--group COL] [--covariates ..] [--json]
                                                    survival analysis of a cohort file, offline
  config                                            show the settings in use and where they came from
  SERVICE METHOD [--field value ...] [--body JSON]  any public method, e.g.
                                                    `medkoord shortage list-shortages`; `medkoord SERVICE` lists them

Output is for people; --json prints JSON for scripts.
Exit codes: 0 ok, 1 some input rejected (import), 2 usage, 3 denied (unauthenticated / permission),
4 server error (unavailable, internal, deadline, rate limit), 5 request rejected (invalid, not found, conflict).
)";

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> raw(argv + 1, argv + argc);
  if (!raw.empty() && raw[0] == "analyse") {
    // The offline analysis (a CSV file in, R-shaped results out) needs no gateway.
#ifdef MEDKOORD_HAVE_RWD_ANALYSE
    return medkoord::analyse::RunAnalyseCommand(raw, std::cout, std::cerr);
#else
    std::fprintf(stderr, "medkoord: this medkoord was built without the rwd analyse library\n");
    return kUsage;
#endif
  }
  auto args = ParseArgs(raw);
  if (!args.ok()) {
    std::fprintf(stderr, "medkoord: %s\n", std::string(args.status().message()).c_str());
    return kUsage;
  }
  if (args->positional.empty() || args->positional[0] == "help" || args->Has("help")) {
    std::fputs(kHelp, args->positional.empty() && !args->Has("help") ? stderr : stdout);
    return args->positional.empty() && !args->Has("help") ? kUsage : kOk;
  }

  SettingsInputs in;
  for (const char* name : {"addr", "api-key", "ca-file"}) {
    if (args->Has(name)) in.flags[name] = args->Get(name);
  }
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos && kv.rfind("MEDKOORD_", 0) == 0) in.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::error_code ec;
  in.cwd = std::filesystem::current_path(ec).string();
  in.read_file = ReadFile;
  auto settings = ResolveSettings(in);
  if (!settings.ok()) {
    std::fprintf(stderr, "medkoord: %s\n", std::string(settings.status().message()).c_str());
    return kUsage;
  }

  Cli cli(*std::move(args), *std::move(settings));
  const std::string command = cli.args().positional[0];
  if (command == "applications") return RunApplications(cli);
  if (command == "report") return RunReport(cli);
  if (command == "admin") return RunAdmin(cli);
  if (command == "config") {
    const Settings& s = cli.settings();
    std::printf("addr     %s  (%s)\napi key  %s  (%s)\nca file  %s  (%s)\n", s.addr.c_str(),
                s.addr_source.empty() ? "unset" : s.addr_source.c_str(),
                s.api_key.empty() ? "" : (s.api_key.substr(0, 9) + "...").c_str(),
                s.api_key_source.empty() ? "unset" : s.api_key_source.c_str(), s.ca_file.c_str(),
                s.ca_file_source.empty() ? "unset" : s.ca_file_source.c_str());
    return kOk;
  }
  bool handled = false;
  if (cli.args().positional.size() == 1) {
    std::printf("Methods of %s:\n", command.c_str());
    PrintGenericHelp(command);
    return kOk;
  }
  const int rc = RunGeneric(cli, command, &handled);
  if (!handled) return cli.Usage("unknown command: " + command + " " + cli.args().positional[1]);
  return rc;
}
