// The intake service: wiring only (common/service_main.h).
#include <memory>

#include "common/service_main.h"
#include "services/intake/assessment_delivery.h"
#include "services/intake/intake_service.h"
#include "services/intake/intake_store.h"
#include "services/intake/migrations.h"
#include "services/intake/submit_settings.h"

int main(int argc, char** argv) {
  return medkoord::RunService(
      argc, argv,
      {.name = "intake",
       .migrations = medkoord::intake::Migrations(),
       .prepare = medkoord::intake::IntakeStore::Prepare,
       .build = [](medkoord::ServiceContext& ctx) -> absl::StatusOr<medkoord::ServiceParts> {
         const std::string assessment_addr = ctx.config.String("assessment_addr");
         auto batching = medkoord::intake::ReadSubmitBatching(ctx.config, ctx.pool.stats().size);
         if (!batching.ok()) return batching.status();
         medkoord::ServiceParts parts;
         auto store = std::make_shared<medkoord::intake::IntakeStore>(ctx.pool, *batching);
         parts.services.push_back(std::make_unique<medkoord::intake::IntakeService>(*store, ctx.signer, ctx.clock));
         parts.services.push_back(
             std::make_unique<medkoord::intake::IntakeInternalService>(*store, ctx.signer, ctx.clock));
         if (!assessment_addr.empty()) {  // else start-up stops with the config error
           auto delivery = std::make_shared<medkoord::intake::AssessmentDelivery>(
               medkoord::InternalChannel(assessment_addr), ctx.signer);
           parts.background.push_back(medkoord::intake::MakeAssessmentRelay(
               ctx.pool, delivery, medkoord::db::OutboxRelayOptions{.name = "intake-outbox"}));
         }
         parts.keep_alive.push_back(store);
         return parts;
       }});
}
