// The RWD service: wiring only (common/service_main.h).
#include <memory>

#include "common/service_main.h"
#include "services/rwd/migrations.h"
#include "services/rwd/rwd_service.h"
#include "services/rwd/rwd_store.h"

int main(int argc, char** argv) {
  return medkoord::RunService(
      argc, argv,
      {.name = "rwd",
       .migrations = medkoord::rwd::Migrations(),
       .prepare = medkoord::rwd::RwdStore::Prepare,
       .build = [](medkoord::ServiceContext& ctx) -> absl::StatusOr<medkoord::ServiceParts> {
         return medkoord::rwd::BuildRwdService(ctx);
       }});
}
