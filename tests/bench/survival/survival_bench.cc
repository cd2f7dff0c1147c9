// Times Kaplan-Meier, log-rank and Cox (Efron and Breslow, 6 covariates) on
// the synthetic data of r_bench.R and compares the results with R's from the
// same run.
//
//   survival_bench SYNTH.csv [R_RESULTS.json]
//
// Prints a JSON object with the timings (median of 3 runs, data in memory,
// as R's timings) and the largest relative difference of the Cox
// coefficients from R's; exits 1 when a coefficient differs by more than
// 1e-6 relative.

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "services/rwd/survival/cox.h"
#include "services/rwd/survival/km.h"
#include "services/rwd/survival/logrank.h"

namespace sv = medkoord::survival;

namespace {

struct Synth {
  std::vector<double> time;
  std::vector<int> status;
  std::vector<std::vector<double>> x;  // trt, x1..x5
};

// The file has no quoting (write.csv of numbers): a plain numeric parser.
bool LoadSynth(const std::string& path, Synth& s) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const char* p = data.data();
  const char* end = p + data.size();
  while (p < end && *p != '\n') ++p;  // header: time,status,trt,x1..x5
  ++p;
  s.x.assign(6, {});
  double v[8];
  while (p < end) {
    for (int c = 0; c < 8; ++c) {
      auto r = std::from_chars(p, end, v[c]);
      if (r.ec != std::errc()) return false;
      p = r.ptr;
      if (p < end && (*p == ',' || *p == '\r')) ++p;
    }
    while (p < end && (*p == '\n' || *p == '\r')) ++p;
    s.time.push_back(v[0]);
    s.status.push_back(static_cast<int>(v[1]));
    for (int j = 0; j < 6; ++j) s.x[j].push_back(v[2 + j]);
  }
  return true;
}

struct Timing {
  double elapsed = 0, cpu = 0;  // medians of 3 runs, seconds
};

double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

template <typename F>
Timing Measure(F&& f) {
  std::vector<double> el, cpu;
  for (int i = 0; i < 3; ++i) {
    const auto a = std::chrono::steady_clock::now();
    const double c0 = CpuNow();
    f();
    cpu.push_back(CpuNow() - c0);
    el.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(el.begin(), el.end());
  std::sort(cpu.begin(), cpu.end());
  return {el[1], cpu[1]};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: survival_bench SYNTH.csv [R_RESULTS.json]\n";
    return 2;
  }
  Synth s;
  const auto r0 = std::chrono::steady_clock::now();
  if (!LoadSynth(argv[1], s)) {
    std::cerr << "cannot read " << argv[1] << "\n";
    return 2;
  }
  const double read_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();
  const size_t n = s.time.size();
  sv::SurvivalData data{s.time, s.status, {}};
  std::vector<int> trt(n);
  for (size_t i = 0; i < n; ++i) trt[i] = s.x[0][i] != 0;
  const std::vector<std::string> labels = {"trt=0", "trt=1"};

  sv::KmFit km_trt;
  const Timing t_km_trt = Measure([&] { km_trt = *sv::FitKaplanMeier(data, trt, labels); });
  const Timing t_km_all = Measure([&] { (void)*sv::FitKaplanMeier(data, {}, {"all"}); });
  sv::LogRankResult lr;
  const Timing t_lr = Measure([&] { lr = *sv::SurvDiff(data, trt, labels); });
  sv::CoxDesign design;
  design.names = {"trt", "x1", "x2", "x3", "x4", "x5"};
  design.x = s.x;
  sv::CoxOptions options;
  options.robust = false;  // as R's coxph without robust=TRUE (concordance on)
  sv::CoxFit efron, breslow;
  const Timing t_efron = Measure([&] { efron = *sv::FitCox(data, design, options); });
  options.ties = sv::Ties::kBreslow;
  const Timing t_breslow = Measure([&] { breslow = *sv::FitCox(data, design, options); });

  nlohmann::ordered_json out;
  out["n"] = n;
  out["read_csv_s"] = read_s;
  auto timing = [](const Timing& t) { return nlohmann::ordered_json{{"elapsed", t.elapsed}, {"cpu", t.cpu}}; };
  out["km_trt"] = timing(t_km_trt);
  out["km_overall"] = timing(t_km_all);
  out["survdiff_trt"] = timing(t_lr);
  out["coxph_efron"] = timing(t_efron);
  out["coxph_breslow"] = timing(t_breslow);
  out["efron_iter"] = efron.iter;
  out["km_median"] = {*km_trt.curves[0].median, *km_trt.curves[1].median};
  out["survdiff_chisq"] = lr.chisq;
  std::vector<double> ce, cb;
  for (const auto& t : efron.terms) ce.push_back(t.coef);
  for (const auto& t : breslow.terms) cb.push_back(t.coef);
  out["efron_coef"] = ce;
  out["breslow_coef"] = cb;
  out["efron_loglik"] = efron.loglik;
  out["efron_concordance"] = efron.concordance.concordance;
  int status = 0;
  if (argc >= 3) {
    std::ifstream in(argv[2]);
    const auto r = nlohmann::json::parse(in);
    auto maxrel = [](const std::vector<double>& a, const nlohmann::json& b) {
      double m = 0;
      for (size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::fabs(a[i] - b[i].get<double>()) / std::fabs(b[i].get<double>()));
      return m;
    };
    const double de = maxrel(ce, r["efron"]["coef"]);
    const double db = maxrel(cb, r["breslow"]["coef"]);
    out["efron_coef_max_rel_diff"] = de;
    out["breslow_coef_max_rel_diff"] = db;
    out["efron_loglik_rel_diff"] =
        std::fabs(efron.loglik - r["efron"]["loglik"][1].get<double>()) / std::fabs(efron.loglik);
    out["efron_iter_r"] = r["efron"]["iter"];
    out["survdiff_chisq_rel_diff"] =
        std::fabs(lr.chisq - r["survdiff_chisq"].get<double>()) / r["survdiff_chisq"].get<double>();
    // Speed-ups against R's timings of the same data: CPU time (fair on a
    // shared machine) and elapsed time.
    auto speedup = [&](const char* rkey, const Timing& t) {
      const auto& rt = r[rkey];
      nlohmann::ordered_json j;
      j["r_elapsed"] = rt["median"];
      j["elapsed"] = rt["median"].get<double>() / t.elapsed;
      if (rt.contains("cpu")) {
        j["r_cpu"] = rt["cpu"];
        j["cpu"] = rt["cpu"].get<double>() / t.cpu;
      }
      return j;
    };
    out["speedup"] = {{"coxph_efron", speedup("coxph_efron", t_efron)},
                      {"coxph_breslow", speedup("coxph_breslow", t_breslow)},
                      {"km_trt", speedup("survfit_trt", t_km_trt)},
                      {"km_overall", speedup("survfit_overall", t_km_all)},
                      {"survdiff_trt", speedup("survdiff_trt", t_lr)}};
    if (de > 1e-6 || db > 1e-6) status = 1;
  }
  std::cout << out.dump(1) << std::endl;
  return status;
}
