-- One durable single-row insert per transaction: the baseline every service's
-- write throughput is compared against (docs/BENCHMARKS.md).
INSERT INTO bench_rows (note, created_at) VALUES ('baseline row', now());
