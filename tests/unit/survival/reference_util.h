#pragma once
// Helpers shared by the survival tests: locating the shared fixtures, loading
// a reference data set into survival inputs, and comparing against R's
// numbers with the tolerances of the RWD issue (relative 1e-6, absolute 1e-9
// near zero; medians and CI limits exactly).

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace medkoord::survival::testing {

inline std::string FixturesDir() { return MEDKOORD_FIXTURES_DIR; }
inline std::string SurvivalFixture(const std::string& name) {
  return FixturesDir() + "/survival/" + name;
}
inline bool HaveSurvivalFixtures() {
  return std::filesystem::exists(SurvivalFixture("lung_ref.json"));
}
inline nlohmann::json LoadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

inline bool Close(double want, double got) {
  if (want == got) return true;
  const double diff = std::fabs(want - got);
  if (diff <= 1e-9) return true;
  return diff <= 1e-6 * std::fabs(want);
}

// ref: a number, null (NA), "NaN" or "Inf".
inline void ExpectValue(const nlohmann::json& ref, std::optional<double> got, const std::string& what,
                        bool exact = false) {
  if (ref.is_null()) {
    EXPECT_TRUE(!got.has_value()) << what << ": want NA, got " << *got;
    return;
  }
  if (ref.is_string()) {
    const std::string s = ref.get<std::string>();
    ASSERT_TRUE(got.has_value()) << what << ": want " << s << ", got NA";
    if (s == "NaN") {
      EXPECT_TRUE(std::isnan(*got)) << what << ": want NaN, got " << *got;
    } else if (s == "Inf") {
      EXPECT_TRUE(std::isinf(*got) && *got > 0) << what << ": want Inf, got " << *got;
    } else if (s == "-Inf") {
      EXPECT_TRUE(std::isinf(*got) && *got < 0) << what << ": want -Inf, got " << *got;
    } else {
      ADD_FAILURE() << what << ": unexpected reference string " << s;
    }
    return;
  }
  ASSERT_TRUE(got.has_value()) << what << ": want " << ref << ", got NA";
  const double want = ref.get<double>();
  if (exact) {
    EXPECT_EQ(want, *got) << what;
  } else {
    EXPECT_TRUE(Close(want, *got)) << what << ": want " << want << " got " << *got
                                   << " rel " << std::fabs(want - *got) / std::fabs(want);
  }
}

template <typename T>
void ExpectVector(const nlohmann::json& ref, const std::vector<T>& got, const std::string& what,
                  bool exact = false) {
  ASSERT_TRUE(ref.is_array()) << what;
  ASSERT_EQ(ref.size(), got.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    std::optional<double> v;
    if constexpr (std::is_same_v<T, std::optional<double>>) {
      v = got[i];
    } else {
      v = static_cast<double>(got[i]);
    }
    ExpectValue(ref[i], v, what + "[" + std::to_string(i) + "]", exact);
  }
}

}  // namespace medkoord::survival::testing
