// `medkoord admin ...`: API keys and the audit log (admin role).
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/principal.h"
#include "medkoord/gateway/v1/gateway.grpc.pb.h"
#include "tools/medkoord/cli.h"

namespace medkoord::cli {
namespace {

using namespace medkoord::gateway::v1;

std::string TimeText(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos()),
                          absl::UTCTimeZone());
}

std::string Roles(const ApiKey& k) {
  std::vector<std::string> out;
  for (int r : k.roles()) out.emplace_back(RoleName(static_cast<Role>(r)));
  return absl::StrJoin(out, ",");
}

int Keys(Cli& cli, std::unique_ptr<GatewayAdmin::Stub> stub) {
  auto& args = cli.args();
  const std::string verb = args.positional.size() > 2 ? args.positional[2] : "";
  grpc::ClientContext ctx;
  cli.Prepare(ctx);
  grpc::Status status;
  if (verb == "create") {
    CreateApiKeyRequest req;
    ApiKey* k = req.mutable_api_key();
    k->set_principal_id(args.Get("principal"));
    k->set_display_name(args.Get("display-name"));
    for (absl::string_view name : absl::StrSplit(args.Get("roles"), ',', absl::SkipEmpty())) {
      auto role = RoleFromName(std::string(name));
      if (!role) return cli.Usage(absl::StrCat("unknown role ", name));
      k->add_roles(*role);
    }
    if (args.Has("region")) {
      auto region = RegionFromSlug(args.Get("region"));
      if (!region) return cli.Usage("unknown region " + args.Get("region"));
      k->set_region(*region);
    }
    req.set_request_id(args.Get("request-id"));
    CreateApiKeyResponse resp;
    status = stub->CreateApiKey(&ctx, req, &resp);
    if (!status.ok()) return cli.Fail(status);
    if (cli.json()) {
      std::cout << Cli::ToJson(resp, false) << std::endl;
    } else {
      std::printf("%s for %s (%s)\nkey (shown only now): %s\n", resp.api_key().name().c_str(),
                  resp.api_key().principal_id().c_str(), Roles(resp.api_key()).c_str(), resp.key().c_str());
    }
    return kOk;
  }
  if (verb == "list") {
    ListApiKeysRequest req;
    req.set_principal_id(args.Get("principal"));
    req.set_include_revoked(args.Bool("include-revoked"));
    ListApiKeysResponse resp;
    status = stub->ListApiKeys(&ctx, req, &resp);
    if (!status.ok()) return cli.Fail(status);
    if (!cli.json()) std::printf("%-18s %-24s %-30s %-12s %-24s %s\n", "NAME", "PRINCIPAL", "ROLES", "PREFIX", "CREATED", "REVOKED");
    for (const auto& k : resp.api_keys()) {
      if (cli.json()) {
        std::cout << Cli::ToJson(k, false) << "\n";
      } else {
        std::printf("%-18s %-24s %-30s %-12s %-24s %s\n", k.name().c_str(), k.principal_id().c_str(),
                    Roles(k).c_str(), k.key_prefix().c_str(), TimeText(k.create_time()).c_str(),
                    TimeText(k.revoke_time()).c_str());
      }
    }
    return kOk;
  }
  if (verb == "revoke") {
    if (args.positional.size() < 4) return cli.Usage("usage: medkoord admin keys revoke apiKeys/<id>");
    RevokeApiKeyRequest req;
    req.set_name(args.positional[3]);
    ApiKey resp;
    status = stub->RevokeApiKey(&ctx, req, &resp);
    if (!status.ok()) return cli.Fail(status);
    std::cout << (cli.json() ? Cli::ToJson(resp, false) : absl::StrCat(resp.name(), " revoked")) << std::endl;
    return kOk;
  }
  return cli.Usage("admin keys: create --principal ID --roles a,b [--region R] | list | revoke NAME");
}

int Audit(Cli& cli, std::unique_ptr<GatewayAdmin::Stub> stub) {
  auto& args = cli.args();
  ListAuditRecordsRequest req;
  absl::Status s = SetFieldsFromFlags(args, &req, "", {"json", "timeout", "all", "addr", "api-key", "ca-file"});
  if (!s.ok()) return cli.Usage(std::string(s.message()));
  const bool all = args.Bool("all");
  if (!cli.json()) std::printf("%-24s %-22s %-58s %-20s %8s  %s\n", "TIME", "PRINCIPAL", "METHOD", "STATUS", "µs", "RESOURCE");
  while (true) {
    grpc::ClientContext ctx;
    cli.Prepare(ctx);
    ListAuditRecordsResponse resp;
    grpc::Status status = stub->ListAuditRecords(&ctx, req, &resp);
    if (!status.ok()) return cli.Fail(status);
    for (const auto& a : resp.audit_records()) {
      if (cli.json()) {
        std::cout << Cli::ToJson(a, false) << "\n";
      } else {
        std::printf("%-24s %-22s %-58s %-20s %8lld  %s\n", TimeText(a.time()).c_str(), a.principal_id().c_str(),
                    a.method().c_str(), a.status_name().c_str(), static_cast<long long>(a.latency_us()),
                    a.resource().c_str());
      }
    }
    if (!all || resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  std::cout.flush();
  return kOk;
}

}  // namespace

int RunAdmin(Cli& cli) {
  auto& p = cli.args().positional;
  const std::string what = p.size() > 1 ? p[1] : "";
  auto channel = cli.Channel();
  if (!channel.ok()) return cli.Usage(std::string(channel.status().message()));
  if (what == "keys") return Keys(cli, GatewayAdmin::NewStub(*channel));
  if (what == "audit") return Audit(cli, GatewayAdmin::NewStub(*channel));
  return cli.Usage("admin: keys create|list|revoke | audit [--principal_id ..] [--method ..] [--all]");
}

}  // namespace medkoord::cli
