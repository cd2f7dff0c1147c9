#pragma once
// Adverse events by worst grade per arm (CTCAE grades 0-5), as safety tables
// in oncology follow-up report them: patients per worst grade, percentages of
// the patients with a known grade, and grade >= 3.

#include <cstdint>
#include <string>
#include <vector>

namespace medkoord::survival {

struct AeArmSummary {
  std::string arm;
  int64_t n = 0;        // patients in the arm
  int64_t n_known = 0;  // with a known worst grade
  std::vector<int64_t> count_by_grade = std::vector<int64_t>(6, 0);  // grades 0..5
  std::vector<double> percent_by_grade = std::vector<double>(6, 0);
  int64_t grade3_plus = 0;
  double grade3_plus_percent = 0;
};

// `arm[i]` indexes `arms`; `grade[i]` is the worst grade, or a negative/NaN
// value when unknown. Grades are rounded down and capped to 0..5.
std::vector<AeArmSummary> SummariseAdverseEvents(const std::vector<int>& arm,
                                                 const std::vector<double>& grade,
                                                 const std::vector<std::string>& arms);

}  // namespace medkoord::survival
