#include "services/gateway/http_pages.h"

#include <openssl/crypto.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "google/rpc/error_details.pb.h"
#include "medkoord/assessment/v1/assessment.grpc.pb.h"
#include "services/gateway/api_key.h"
#include "services/gateway/https_relay.h"
#include "services/gateway/report_page.h"

namespace medkoord::gateway {
namespace {

constexpr char kHtml[] = "text/html; charset=utf-8";

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted: return 409;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

HttpResponse ErrorPage(const absl::Status& status) {
  HttpResponse r;
  r.status = HttpStatusOf(status.code());
  r.content_type = kHtml;
  r.body = RenderMessagePage(absl::StrCat("Fejl ", r.status), std::string(status.message()));
  if (r.status == 401) r.headers["WWW-Authenticate"] = "Basic realm=\"medkoord\", charset=\"UTF-8\"";
  if (r.status == 429) {
    if (auto retry = status.GetPayload(kRetryInfoTypeUrl)) {
      google::rpc::RetryInfo info;
      if (info.ParseFromString(std::string(*retry))) {
        r.headers["Retry-After"] = std::to_string(std::max<int64_t>(1, info.retry_delay().seconds() + 1));
      }
    }
  }
  return r;
}

}  // namespace

HttpPages::HttpPages(ProxyDeps deps, std::shared_ptr<grpc::Channel> assessment, std::function<bool()> ready)
    : deps_(deps), assessment_(std::move(assessment)), ready_(std::move(ready)) {}

void HttpPages::Register(HttpServer& server) {
  server.Handle("/healthz", [this](const HttpRequest& r) { return Healthz(r); });
  server.Handle("/metrics", [this](const HttpRequest& r) { return Metrics(r); });
  server.Handle("/", [this](const HttpRequest& r) { return Index(r); });
  server.Handle("/reports/annual", [this](const HttpRequest& r) { return AnnualReport(r); });
}

HttpResponse HttpPages::Healthz(const HttpRequest&) const {
  const bool ok = ready_ && ready_();
  return HttpResponse{ok ? 200 : 503, "text/plain; charset=utf-8", {}, ok ? "SERVING\n" : "NOT_SERVING\n"};
}

HttpResponse HttpPages::Metrics(const HttpRequest&) const {
  return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", {}, metrics::DefaultRegistry().Render()};
}

HttpResponse HttpPages::Index(const HttpRequest&) const {
  HttpResponse r;
  r.content_type = kHtml;
  r.body =
      "<!doctype html><html lang=\"da\"><head><meta charset=\"utf-8\"><title>medkoord</title></head><body>"
      "<h1>medkoord</h1><ul><li><a href=\"/reports/annual\">Årsrapport: enkeltansøgninger</a></li></ul>"
      "</body></html>\n";
  return r;
}

std::optional<PeerCertificate> HttpPages::RelayedCertificate(const HttpRequest& request) const {
  if (relay_token_.empty()) return std::nullopt;
  auto it = request.headers.find(kRelayCertHeader);
  if (it == request.headers.end()) return std::nullopt;
  std::vector<std::string> parts = absl::StrSplit(it->second, '.');
  if (parts.size() != 3 || parts[0].size() != relay_token_.size() ||
      CRYPTO_memcmp(parts[0].data(), relay_token_.data(), relay_token_.size()) != 0) {
    return std::nullopt;
  }
  PeerCertificate cert;
  if (!absl::WebSafeBase64Unescape(parts[1], &cert.subject) || !absl::WebSafeBase64Unescape(parts[2], &cert.common_name)) {
    return std::nullopt;
  }
  return cert;
}

HttpResponse HttpPages::AnnualReport(const HttpRequest& request) const {
  using medkoord::assessment::v1::Assessment;
  const absl::Time start = deps_.clock->Now();
  const std::string method = absl::StrCat("/", Assessment::service_full_name(), "/GetAnnualReport");
  Principal principal;
  int year = static_cast<int>(absl::ToCivilYear(start, DanishTimeZone()).year()) - 1;
  auto it = request.query.find("year");

  auto serve = [&]() -> absl::StatusOr<std::string> {
    auto auth = request.headers.find("authorization");
    std::optional<std::string> key;
    if (auth != request.headers.end()) key = BasicAuthKey(auth->second);
    if (!key) key = auth != request.headers.end() ? BearerToken(auth->second) : std::nullopt;
    std::optional<PeerCertificate> cert = RelayedCertificate(request);
    if (!key && !cert) return absl::UnauthenticatedError("Log ind med din API-nøgle som adgangskode.");
    ASSIGN_OR_RETURN(principal, deps_.authenticator->Authenticate(key.value_or(""), cert.value_or(PeerCertificate{})));
    RETURN_IF_ERROR(deps_.rate_limiter->Acquire(principal.id()));
    const MethodRoute* route = deps_.roles->Find(method);
    if (route == nullptr || !deps_.roles->Allows(*route, principal)) {
      return absl::PermissionDeniedError("Din rolle giver ikke adgang til årsrapporten.");
    }
    if (it != request.query.end() && (!absl::SimpleAtoi(it->second, &year) || year < 2000 || year > 2100)) {
      return InvalidField("year", "must be a year such as 2024");
    }
    if (!assessment_) return absl::UnavailableError("assessment is not configured");
    auto stub = Assessment::NewStub(assessment_);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    deps_.signer->Attach(ctx, principal, method);
    ctx.AddMetadata("x-request-id", NewRequestId());
    medkoord::assessment::v1::GetAnnualReportRequest req;
    req.set_year(year);
    req.set_format(medkoord::assessment::v1::GetAnnualReportRequest::FORMAT_PROTO);
    medkoord::assessment::v1::GetAnnualReportResponse resp;
    grpc::Status status = stub->GetAnnualReport(&ctx, req, &resp);
    if (!status.ok()) return FromGrpcStatus(status);
    return RenderAnnualReportHtml(resp.report());
  };
  absl::StatusOr<std::string> page = serve();

  AuditRecord record;
  record.mutable_time()->set_seconds(absl::ToUnixSeconds(start));
  record.set_principal_id(principal.id());
  record.set_method(method);
  record.set_resource(absl::StrCat("reports/annual/", year));
  const absl::StatusCode code = page.ok() ? absl::StatusCode::kOk : page.status().code();
  record.set_status_code(static_cast<int>(code));
  record.set_latency_us(absl::ToInt64Microseconds(deps_.clock->Now() - start));
  record.set_peer(absl::StrCat("http:", request.peer));
  deps_.audit->Record(std::move(record));

  if (!page.ok()) return ErrorPage(page.status());
  HttpResponse r;
  r.content_type = kHtml;
  r.headers["Cache-Control"] = "no-store";
  r.body = *std::move(page);
  return r;
}

}  // namespace medkoord::gateway
