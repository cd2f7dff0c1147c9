#include "tools/medkoord/cli.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/security/credentials.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "google/type/date.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace medkoord::cli {
namespace {

namespace pb = google::protobuf;

const std::set<std::string>& BooleanFlags() {
  static const auto* flags = new std::set<std::string>{
      "json", "all", "validate-only", "include-revoked", "help", "no-progress", "include-region-ref", "csv", "pretty"};
  return *flags;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string NewId() {
  std::random_device rd;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(rd());
  return absl::BytesToHexString(bytes);
}

}  // namespace

int ExitCodeFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return kOk;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED: return kDenied;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
    case grpc::StatusCode::ABORTED: return kRejected;
    default: return kServerError;
  }
}

std::string Args::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  if (it == flags.end() || it->second.empty()) return fallback;
  const_cast<Args*>(this)->used.insert(name);
  return it->second.back();
}

bool Args::Bool(const std::string& name) const {
  auto it = flags.find(name);
  if (it == flags.end()) return false;
  const_cast<Args*>(this)->used.insert(name);
  const std::string& v = it->second.back();
  return v.empty() || v == "true" || v == "yes" || v == "1";
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv) {
  Args out;
  bool only_positional = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (only_positional || a.size() < 3 || a.substr(0, 2) != "--") {
      if (a == "--") {
        only_positional = true;
        continue;
      }
      out.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::string value;
    if (const size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (!BooleanFlags().count(name)) {
      if (i + 1 >= argv.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    out.flags[name].push_back(value);
  }
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Cli::Channel() {
  if (channel_) return channel_;
  if (settings_.addr.empty()) {
    return absl::InvalidArgumentError(
        "no gateway address: use --addr, MEDKOORD_ADDR or .medkoord/local.env (deploy/local writes it)");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!settings_.ca_file.empty()) {
    std::ifstream probe(settings_.ca_file);
    if (!probe) return absl::InvalidArgumentError(absl::StrCat("CA file cannot be read: ", settings_.ca_file));
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadAll(settings_.ca_file);
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments ch_args;
  ch_args.SetMaxReceiveMessageSize(64 << 20);
  channel_ = grpc::CreateCustomChannel(settings_.addr, creds, ch_args);
  return channel_;
}

void Cli::Prepare(grpc::ClientContext& ctx, absl::Duration timeout) const {
  absl::Duration t = timeout;
  if (const std::string flag = args_.Get("timeout"); !flag.empty()) {
    absl::Duration parsed;
    if (absl::ParseDuration(flag, &parsed)) t = parsed;
  }
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + t));
  if (!settings_.api_key.empty()) ctx.AddMetadata("authorization", absl::StrCat("Bearer ", settings_.api_key));
  ctx.AddMetadata("x-request-id", NewId());
}

int Cli::Fail(const grpc::Status& status) const {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  const char* name = code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
  std::fprintf(stderr, "medkoord: %s: %s\n", name, status.error_message().c_str());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const auto& any : details.details()) {
      google::rpc::BadRequest bad;
      google::rpc::RetryInfo retry;
      if (any.UnpackTo(&bad)) {
        for (const auto& v : bad.field_violations()) {
          std::fprintf(stderr, "  %s: %s\n", v.field().c_str(), v.description().c_str());
        }
      } else if (any.UnpackTo(&retry)) {
        std::fprintf(stderr, "  retry after %.3fs\n",
                     retry.retry_delay().seconds() + retry.retry_delay().nanos() / 1e9);
      }
    }
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::fprintf(stderr, "  (gateway %s)\n", settings_.addr.c_str());
  }
  return ExitCodeFor(status.error_code());
}

int Cli::Usage(const std::string& message) const {
  std::fprintf(stderr, "medkoord: %s\n(see `medkoord help`)\n", message.c_str());
  return kUsage;
}

std::string Cli::ToJson(const pb::Message& message, bool pretty) {
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.add_whitespace = pretty;
  std::string out;
  (void)pb::util::MessageToJsonString(message, &out, options);
  if (!pretty) return out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string Kebab(const std::string& camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (absl::ascii_isupper(c)) {
      if (i > 0) out += '-';
      out += absl::ascii_tolower(c);
    } else {
      out += c;
    }
  }
  return out;
}

absl::Status SetField(pb::Message* message, const std::string& path, const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(absl::StrReplaceAll(path, {{"-", "_"}}), '.');
  pb::Message* current = message;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const pb::FieldDescriptor* f = current->GetDescriptor()->FindFieldByName(parts[i]);
    if (f == nullptr || f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || f->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat("--", path, ": no such field"));
    }
    current = current->GetReflection()->MutableMessage(current, f);
  }
  const pb::FieldDescriptor* f = current->GetDescriptor()->FindFieldByName(parts.back());
  if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat("--", path, ": no such field"));
  const pb::Reflection* r = current->GetReflection();
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("--", path, ": ", what, ", got '", value, "'"));
  };
  std::vector<std::string> values;
  if (f->is_repeated()) {
    values = absl::StrSplit(value, ',', absl::SkipEmpty());
  } else {
    values.push_back(value);
  }
  for (const std::string& v : values) {
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING:
        f->is_repeated() ? r->AddString(current, f, v) : r->SetString(current, f, v);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32: {
        int32_t n;
        if (!absl::SimpleAtoi(v, &n)) return bad("expected an integer");
        f->is_repeated() ? r->AddInt32(current, f, n) : r->SetInt32(current, f, n);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        int64_t n;
        if (!absl::SimpleAtoi(v, &n)) return bad("expected an integer");
        f->is_repeated() ? r->AddInt64(current, f, n) : r->SetInt64(current, f, n);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t n;
        if (!absl::SimpleAtoi(v, &n)) return bad("expected an integer");
        f->is_repeated() ? r->AddUInt32(current, f, n) : r->SetUInt32(current, f, n);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t n;
        if (!absl::SimpleAtoi(v, &n)) return bad("expected an integer");
        f->is_repeated() ? r->AddUInt64(current, f, n) : r->SetUInt64(current, f, n);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT: {
        double d;
        if (!absl::SimpleAtod(v, &d)) return bad("expected a number");
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) {
          f->is_repeated() ? r->AddDouble(current, f, d) : r->SetDouble(current, f, d);
        } else {
          f->is_repeated() ? r->AddFloat(current, f, static_cast<float>(d))
                           : r->SetFloat(current, f, static_cast<float>(d));
        }
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        const std::string l = absl::AsciiStrToLower(v);
        bool b;
        if (l == "yes" || l == "true" || l == "1" || l.empty()) {
          b = true;
        } else if (l == "no" || l == "false" || l == "0") {
          b = false;
        } else {
          return bad("expected yes or no");
        }
        f->is_repeated() ? r->AddBool(current, f, b) : r->SetBool(current, f, b);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        // Accept the full name (REGION_SYDDANMARK) or its last part as
        // written in the export format (syddanmark, not_assessed).
        const pb::EnumDescriptor* e = f->enum_type();
        const pb::EnumValueDescriptor* found = e->FindValueByName(absl::AsciiStrToUpper(v));
        for (int k = 0; found == nullptr && k < e->value_count(); ++k) {
          if (absl::EndsWithIgnoreCase(e->value(k)->name(), absl::StrCat("_", v))) found = e->value(k);
        }
        if (found == nullptr) return bad(absl::StrCat("not a ", e->name()));
        f->is_repeated() ? r->AddEnum(current, f, found) : r->SetEnum(current, f, found);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        pb::Message* m = f->is_repeated() ? r->AddMessage(current, f) : r->MutableMessage(current, f);
        if (auto* date = dynamic_cast<google::type::Date*>(m)) {
          absl::CivilDay day;
          if (!absl::ParseCivilTime(v, &day)) return bad("expected a date YYYY-MM-DD");
          date->set_year(static_cast<int>(day.year()));
          date->set_month(day.month());
          date->set_day(day.day());
        } else if (auto* ts = dynamic_cast<pb::Timestamp*>(m)) {
          absl::Time t;
          std::string err;
          if (!absl::ParseTime(absl::RFC3339_full, v, &t, &err)) return bad("expected a time like 2024-05-01T12:00:00Z");
          ts->set_seconds(absl::ToUnixSeconds(t));
        } else {
          pb::util::JsonParseOptions options;
          if (!pb::util::JsonStringToMessage(v, m, options).ok()) return bad("expected JSON for a message field");
        }
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status SetFieldsFromFlags(Args& args, pb::Message* message, const std::string& prefix,
                                const std::set<std::string>& skip) {
  std::vector<std::string> problems;
  if (args.Has("body")) {
    pb::util::JsonParseOptions options;
    auto st = pb::util::JsonStringToMessage(args.Get("body"), message, options);
    if (!st.ok()) problems.push_back(absl::StrCat("--body: ", st.ToString()));
  }
  for (const auto& [name, values] : args.flags) {
    if (skip.count(name) || name == "body") continue;
    args.used.insert(name);
    for (const std::string& v : values) {
      absl::Status s = SetField(message, prefix + name, v);
      if (!s.ok() && !prefix.empty()) {
        // A flag naming a request field rather than one under the prefix.
        if (SetField(message, name, v).ok()) continue;
      }
      if (!s.ok()) problems.emplace_back(s.message());
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

}  // namespace medkoord::cli
