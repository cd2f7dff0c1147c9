#pragma once
// The gateway's HTTP side for people and probes: /healthz, /metrics, and
// report pages. A browser authenticates with HTTP Basic, the API key as the
// password; the page's data come from the services through the same role
// table, rate limit, signed principal and audit log as any gRPC call.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/http_server.h"
#include "services/gateway/proxy.h"

namespace medkoord::gateway {

class HttpPages {
 public:
  // `assessment` may be null (no assessment_addr): report pages answer 503.
  HttpPages(ProxyDeps deps, std::shared_ptr<grpc::Channel> assessment, std::function<bool()> ready);

  void Register(HttpServer& server);
  // Trusts client certificates the HTTPS relay passes on with this secret
  // (https_relay.h); without it, only API keys authenticate.
  void TrustRelay(std::string token) { relay_token_ = std::move(token); }

  HttpResponse Healthz(const HttpRequest& request) const;
  HttpResponse Metrics(const HttpRequest& request) const;
  HttpResponse Index(const HttpRequest& request) const;
  HttpResponse AnnualReport(const HttpRequest& request) const;

 private:
  // The client certificate the HTTPS relay verified for this request, if any.
  std::optional<PeerCertificate> RelayedCertificate(const HttpRequest& request) const;

  ProxyDeps deps_;
  std::shared_ptr<grpc::Channel> assessment_;
  std::function<bool()> ready_;
  std::string relay_token_;
};

}  // namespace medkoord::gateway
