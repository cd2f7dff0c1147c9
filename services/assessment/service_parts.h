#pragma once
// Wiring of one assessment process, shared by main.cc (through RunService)
// and the in-process integration tests.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/db/outbox.h"
#include "common/service_main.h"
#include "services/assessment/assessment_service.h"
#include "services/assessment/assessment_store.h"
#include "services/assessment/decision_feed.h"

namespace medkoord::assessment {

// Builds the store, the decision feed, both gRPC services and the relay that
// delivers decisions to intake at `intake_addr`.
absl::StatusOr<ServiceParts> BuildAssessment(db::Pool& pool, const PrincipalSigner& signer,
                                             const Clock& clock, const std::string& intake_addr,
                                             db::OutboxRelayOptions relay_options = {});

// RunService's build step: reads `intake_addr` from the configuration.
absl::StatusOr<ServiceParts> BuildAssessmentFromConfig(ServiceContext& ctx);

}  // namespace medkoord::assessment
