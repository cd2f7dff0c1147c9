// The shortage (restordre) coordination service.
#include "common/service_main.h"
#include "services/shortage/service_parts.h"
#include "services/shortage/shortage_store.h"

int main(int argc, char** argv) {
  return medkoord::RunService(argc, argv,
                              {.name = "shortage",
                               .migrations = medkoord::shortage::Migrations(),
                               .prepare = medkoord::shortage::ShortageStore::Prepare,
                               .build = [](medkoord::ServiceContext& context) {
                                 return medkoord::shortage::BuildShortageService(context);
                               }});
}
