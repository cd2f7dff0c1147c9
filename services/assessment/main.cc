// The assessment service: wiring only (services/assessment/service_parts.h).
#include "common/service_main.h"
#include "services/assessment/assessment_store.h"
#include "services/assessment/service_parts.h"

namespace medkoord::assessment {
const std::vector<db::Migration>& Migrations();
}  // namespace medkoord::assessment

int main(int argc, char** argv) {
  return medkoord::RunService(argc, argv,
                              {.name = "assessment",
                               .migrations = medkoord::assessment::Migrations(),
                               .prepare = medkoord::assessment::AssessmentStore::Prepare,
                               .build = medkoord::assessment::BuildAssessmentFromConfig});
}
