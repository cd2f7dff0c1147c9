#pragma once
// Shortage test data shared by the integration and end-to-end tests: the 2024
// peginterferon alfa-2a shortage (DOMAIN.md section 3) as an announcement.

#include <string>

#include "medkoord/shortage/v1/shortage.pb.h"

namespace medkoord::testing {

inline medkoord::shortage::v1::AnnounceShortageRequest PeginterferonShortage(const std::string& request_id = "") {
  medkoord::shortage::v1::AnnounceShortageRequest r;
  auto* s = r.mutable_shortage();
  s->mutable_drug()->set_name("peginterferon alfa-2a (Pegasys)");
  s->mutable_drug()->set_atc_code("L03AB11");
  s->mutable_drug()->set_strength("90 mikrogram");
  s->mutable_drug()->set_form("injektionsvæske, opløsning i fyldt pen");
  s->mutable_drug()->set_pack("1 stk.");
  s->mutable_announced_on()->set_year(2024);
  s->mutable_announced_on()->set_month(3);
  s->mutable_announced_on()->set_day(4);
  s->set_criticality(medkoord::shortage::v1::CRITICALITY_HIGH);
  s->set_source("Lægemiddelstyrelsen, restordre");
  r.set_request_id(request_id);
  return r;
}

}  // namespace medkoord::testing
