# Synthetic survival data per ../shared/fixtures/survival/README.md and R's
# timings on it, for docs/BENCHMARKS.md.
#   Rscript r_bench.R N OUT_CSV OUT_JSON
# Writes the data (read back before timing, as the reference script does) and
# a JSON file with R's timings (median of 3 elapsed, gc() before each) and
# results (Cox coefficients, loglik, iter, KM medians, log-rank chisq).
suppressMessages(library(survival))
args <- commandArgs(TRUE)
n <- as.numeric(args[1]); out_csv <- args[2]; out_json <- args[3]

make_synth <- function(n) {
  set.seed(1)
  x1 <- round(rnorm(n), 6); x2 <- round(rnorm(n), 6); x3 <- round(rnorm(n), 6)
  x4 <- round(rnorm(n), 6); x5 <- round(rnorm(n), 6)
  trt <- rbinom(n, 1, 0.5)
  lambda <- log(2) / 730 * exp(-0.5 * trt + 0.3 * x1 - 0.2 * x2 + 0.1 * x3 + 0 * x4 + 0.15 * x5)
  tt <- rexp(n, lambda)
  f <- function(lrc) mean(exp(lrc) / (exp(lrc) + lambda)) - 0.30
  rc <- exp(uniroot(f, c(-30, 10), tol = 1e-12)$root)
  cc <- rexp(n, rc)
  data.frame(time = pmax(1, ceiling(pmin(tt, cc))), status = as.integer(tt <= cc),
             trt = trt, x1 = x1, x2 = x2, x3 = x3, x4 = x4, x5 = x5)
}

d0 <- make_synth(n)
# %.15g, or %.17g where %.15g would not read back as the same double.
fmt <- function(x) {
  s <- sprintf("%.15g", x)
  bad <- as.numeric(s) != x
  s[bad] <- sprintf("%.17g", x[bad])
  s
}
writeLines(c(paste(names(d0), collapse = ","),
             do.call(paste, c(lapply(d0, fmt), sep = ","))), out_csv)
t_read <- system.time(d <- read.csv(out_csv))["elapsed"]
stopifnot(all(mapply(function(a, b) identical(as.numeric(a), as.numeric(b)), d0, d)))

# Elapsed and CPU (user + system) seconds: on a shared machine the CPU time
# is the fairer figure, so both are kept.
timeit <- function(expr) {
  e <- substitute(expr); env <- parent.frame()
  el <- numeric(3); cpu <- numeric(3); val <- NULL
  for (i in 1:3) {
    gc()
    st <- system.time(val <- eval(e, env))
    el[i] <- st[["elapsed"]]
    cpu[i] <- st[["user.self"]] + st[["sys.self"]]
  }
  list(median = median(el), all = el, cpu = median(cpu), value = val)
}
km_trt <- timeit(survfit(Surv(time, status) ~ trt, data = d))
km_all <- timeit(survfit(Surv(time, status) ~ 1, data = d))
sd_trt <- timeit(survdiff(Surv(time, status) ~ trt, data = d))
cx_efr <- timeit(coxph(Surv(time, status) ~ trt + x1 + x2 + x3 + x4 + x5, data = d, ties = "efron"))
cx_bre <- timeit(coxph(Surv(time, status) ~ trt + x1 + x2 + x3 + x4 + x5, data = d, ties = "breslow"))

num <- function(x) paste0("[", paste(sprintf("%.17g", x), collapse = ","), "]")
tm <- function(t) sprintf("{\"median\":%.6f,\"cpu\":%.6f,\"all\":%s}", t$median, t$cpu, num(t$all))
fit <- function(t) {
  f <- t$value
  sprintf("{\"coef\":%s,\"se\":%s,\"loglik\":%s,\"iter\":%d,\"concordance\":%.17g}",
          num(coef(f)), num(sqrt(diag(f$var))), num(f$loglik), f$iter, f$concordance["concordance"])
}
tab <- summary(km_trt$value)$table
json <- paste0("{",
  "\"n\":", n, ",\"events\":", sum(d$status), ",\"distinct_times\":", length(unique(d$time)),
  ",\"r_version\":\"", R.version.string, "\",\"survival_version\":\"", packageVersion("survival"), "\"",
  ",\"read_csv\":", sprintf("%.6f", t_read),
  ",\"survfit_trt\":", tm(km_trt), ",\"survfit_overall\":", tm(km_all),
  ",\"survdiff_trt\":", tm(sd_trt), ",\"coxph_efron\":", tm(cx_efr), ",\"coxph_breslow\":", tm(cx_bre),
  ",\"km_median\":", num(tab[, "median"]), ",\"survdiff_chisq\":", sprintf("%.17g", sd_trt$value$chisq),
  ",\"efron\":", fit(cx_efr), ",\"breslow\":", fit(cx_bre), "}")
writeLines(json, out_json)
cat(json, "\n")
