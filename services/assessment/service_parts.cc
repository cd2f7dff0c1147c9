#include "services/assessment/service_parts.h"

#include <utility>

namespace medkoord::assessment {

absl::StatusOr<ServiceParts> BuildAssessment(db::Pool& pool, const PrincipalSigner& signer,
                                             const Clock& clock, const std::string& intake_addr,
                                             db::OutboxRelayOptions relay_options) {
  ServiceParts parts;
  auto store = std::make_shared<AssessmentStore>(pool);
  auto feed = std::make_unique<DecisionFeed>(pool, *store);
  auto delivery = std::make_shared<IntakeDecisionDelivery>(InternalChannel(intake_addr), signer);
  parts.services.push_back(std::make_unique<AssessmentService>(*store, *feed, signer, clock));
  parts.services.push_back(std::make_unique<AssessmentInternalService>(*store, signer, clock));
  relay_options.name = "assessment_outbox";
  parts.background.push_back(std::make_unique<db::OutboxRelay>(
      pool, [delivery](const db::OutboxEvent& ev) { return (*delivery)(ev); }, relay_options));
  parts.background.push_back(std::move(feed));
  parts.keep_alive.push_back(store);
  parts.keep_alive.push_back(delivery);
  return parts;
}

absl::StatusOr<ServiceParts> BuildAssessmentFromConfig(ServiceContext& ctx) {
  // RunService reports a missing setting (Config::Finish) after this returns.
  const std::string intake_addr = ctx.config.String("intake_addr");
  return BuildAssessment(ctx.pool, ctx.signer, ctx.clock, intake_addr);
}

}  // namespace medkoord::assessment
