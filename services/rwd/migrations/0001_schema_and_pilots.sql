-- RWD: protocols, pseudonymised cohorts, the access log and stored analyses.
-- No column ever holds a CPR number: cohort_patients.patient_key is a keyed
-- HMAC of it (the key is configuration, never stored here) or a source
-- pseudonym.

-- A protocol is kept as the rwd.v1.Protocol message in its JSON form (with
-- its trial benchmarks), so that it can grow compatibly with the contract.
CREATE TABLE protocols (
  protocol_id  text PRIMARY KEY CHECK (protocol_id ~ '^[a-z][a-z0-9-]{2,62}$'),
  body         jsonb NOT NULL,
  request_id   text UNIQUE,
  created_by   text NOT NULL,
  created_at   timestamptz NOT NULL
);

CREATE TABLE cohorts (
  cohort_id          bigserial PRIMARY KEY,
  protocol_id        text NOT NULL REFERENCES protocols (protocol_id),
  request_id         text UNIQUE,
  display_name       text NOT NULL DEFAULT '',
  data_cut_date      date,
  patients           bigint NOT NULL DEFAULT 0 CHECK (patients >= 0),
  rows_rejected      bigint NOT NULL DEFAULT 0 CHECK (rows_rejected >= 0),
  -- Covariate columns in file order, and which of them are numeric.
  covariate_names    text[] NOT NULL DEFAULT '{}',
  covariate_numeric  boolean[] NOT NULL DEFAULT '{}',
  has_source         boolean NOT NULL DEFAULT false,
  variables          jsonb NOT NULL DEFAULT '[]',
  arms               jsonb NOT NULL DEFAULT '[]',
  sha256             text NOT NULL DEFAULT '',
  -- The rwd.v1.UploadCohortResponse, returned again for a repeated request_id.
  upload_response    bytea,
  quality_report     jsonb,
  created_by         text NOT NULL,
  created_at         timestamptz NOT NULL
);
CREATE INDEX cohorts_by_protocol ON cohorts (protocol_id, cohort_id);

CREATE TABLE cohort_patients (
  cohort_id          bigint NOT NULL REFERENCES cohorts (cohort_id) ON DELETE CASCADE,
  line               bigint NOT NULL,
  patient_key        text NOT NULL,
  arm                text NOT NULL,
  index_date         date NOT NULL,
  death_date         date,
  progression_date   date,
  last_contact_date  date,
  source             text,
  covariates         text[] NOT NULL,
  PRIMARY KEY (cohort_id, line),
  UNIQUE (cohort_id, patient_key),
  CHECK (death_date IS NOT NULL OR last_contact_date IS NOT NULL)
);

CREATE TABLE analyses (
  analysis_id   bigserial PRIMARY KEY,
  cohort_id     bigint NOT NULL REFERENCES cohorts (cohort_id) ON DELETE CASCADE,
  protocol_id   text NOT NULL REFERENCES protocols (protocol_id),
  request_id    text UNIQUE,
  -- rwd.v1.Analysis without result_json, in its JSON form.
  body          jsonb NOT NULL,
  -- Exactly the text the offline command prints (jsonb would reorder keys).
  result_json   text NOT NULL,
  created_by    text NOT NULL,
  created_at    timestamptz NOT NULL
);
CREATE INDEX analyses_by_cohort ON analyses (cohort_id, analysis_id);

-- Who uploaded, read, analysed or deleted which cohort. Kept after the
-- cohort is deleted, so it has no foreign key.
CREATE TABLE cohort_access (
  access_id     bigserial PRIMARY KEY,
  cohort_id     bigint NOT NULL,
  principal_id  text NOT NULL,
  action        text NOT NULL,
  method        text NOT NULL,
  analysis_id   bigint,
  at            timestamptz NOT NULL
);
CREATE INDEX cohort_access_by_cohort ON cohort_access (cohort_id, access_id);

-- Pilots 1 and 2 of Medicinrådet's RWD partnership (DOMAIN.md section 4),
-- present on every fresh install, with the published results of the trials
-- the two recommendations rested on. Each figure keeps its publication and
-- data cut, as DOMAIN.md's table gives them.

INSERT INTO protocols (protocol_id, body, created_by, created_at) VALUES
('pilot-1-pembrolizumab-nsclc', $json${
  "title": "Pilot 1: pembrolizumab with pemetrexed and platinum in non-squamous NSCLC, PD-L1 < 1 %",
  "medicine": "pembrolizumab",
  "regimen": "pembrolizumab 200 mg + pemetrexed 500 mg/m² + carboplatin AUC 5 or cisplatin 75 mg/m², until progression or unacceptable toxicity",
  "population": "adults, incurable non-squamous NSCLC, PD-L1 < 1 %, no ALK translocation or activating EGFR mutation",
  "eligibility_criteria": [
    "adult (18 years or older)",
    "incurable non-squamous non-small-cell lung cancer",
    "PD-L1 < 1 %",
    "no ALK translocation",
    "no activating EGFR mutation"
  ],
  "intervention": {"label": "pembrolizumab+chemo", "description": "pembrolizumab + pemetrexed + carboplatin or cisplatin"},
  "comparator": {"label": "chemo", "description": "pemetrexed + platinum chemotherapy"},
  "endpoints": [
    {"endpoint": "ENDPOINT_OS", "description": "efficacy: overall survival"},
    {"endpoint": "ENDPOINT_PFS", "description": "efficacy: progression-free survival"},
    {"endpoint": "ENDPOINT_SAFETY", "description": "safety: adverse events by worst grade"},
    {"endpoint": "ENDPOINT_QUALITY_OF_LIFE", "description": "quality of life"}
  ],
  "expected_patients_per_year": 200,
  "recommendation_date": {"year": 2020, "month": 10, "day": 21},
  "recommendation_status": "RECOMMENDATION_STATUS_STANDARD",
  "evidence": "phase III KEYNOTE-189, direct comparison",
  "health_economics": "assessed before the QALY method, no QALY/ICER",
  "benchmarks": [
    {"trial": "KEYNOTE-189", "population": "all", "n": 616, "endpoint": "ENDPOINT_OS",
     "landmarks": [{"months": 12, "intervention_percent": 69.2, "comparator_percent": 49.4}],
     "hazard_ratio": 0.49, "hr_lower": 0.38, "hr_upper": 0.64,
     "source": "Gandhi et al., NEJM 2018", "data_cut": "primary analysis"},
    {"trial": "KEYNOTE-189", "population": "all", "n": 616, "endpoint": "ENDPOINT_PFS",
     "intervention_median_months": 8.8, "comparator_median_months": 4.9,
     "hazard_ratio": 0.52, "hr_lower": 0.43, "hr_upper": 0.64,
     "source": "Gandhi et al., NEJM 2018", "data_cut": "primary analysis"},
    {"trial": "KEYNOTE-189", "population": "PD-L1 < 1 %", "endpoint": "ENDPOINT_OS",
     "hazard_ratio": 0.59, "hr_lower": 0.38, "hr_upper": 0.92,
     "source": "Gandhi et al., NEJM 2018 (subgroup)", "data_cut": "primary analysis",
     "primary": true},
    {"trial": "KEYNOTE-189", "population": "all", "n": 616, "endpoint": "ENDPOINT_OS",
     "intervention_median_months": 22.0, "comparator_median_months": 10.7,
     "hazard_ratio": 0.56, "hr_lower": 0.45, "hr_upper": 0.70,
     "source": "Gadgeel et al., JCO 2020", "data_cut": "updated analysis"},
    {"trial": "KEYNOTE-189", "population": "all", "n": 616, "endpoint": "ENDPOINT_OS",
     "intervention_median_months": 22.0, "comparator_median_months": 10.6,
     "landmarks": [{"months": 60, "intervention_percent": 19.4, "comparator_percent": 11.3}],
     "hazard_ratio": 0.60, "hr_lower": 0.50, "hr_upper": 0.72,
     "source": "Garassino et al., JCO 2023", "data_cut": "5-year analysis"}
  ]
}$json$, 'migration', '2026-01-01T00:00:00Z'),
('pilot-2-sacituzumab-tnbc', $json${
  "title": "Pilot 2: sacituzumab govitecan in metastatic triple-negative breast cancer",
  "medicine": "sacituzumab govitecan",
  "regimen": "sacituzumab govitecan 10 mg/kg IV day 1 and 8 of each 21-day cycle, until progression or unacceptable toxicity",
  "population": "adults, unresectable or metastatic triple-negative breast cancer, ≥ 2 prior systemic treatments (≥ 1 taxane-based), ≥ 1 of them for metastatic disease",
  "eligibility_criteria": [
    "adult (18 years or older)",
    "unresectable or metastatic triple-negative breast cancer",
    "at least 2 prior systemic treatments, at least 1 taxane-based",
    "at least 1 prior treatment for metastatic disease"
  ],
  "intervention": {"label": "sacituzumab_govitecan", "description": "sacituzumab govitecan"},
  "comparator": {"label": "tpc", "description": "treatment of physician's choice: eribulin, vinorelbine, capecitabine or gemcitabine"},
  "endpoints": [
    {"endpoint": "ENDPOINT_PFS", "description": "progression-free survival: patients without brain metastases; all patients"},
    {"endpoint": "ENDPOINT_OS", "description": "overall survival"},
    {"endpoint": "ENDPOINT_SAFETY", "description": "safety: adverse events by worst grade"},
    {"endpoint": "ENDPOINT_QUALITY_OF_LIFE", "description": "quality of life"}
  ],
  "expected_patients_per_year": 60,
  "recommendation_date": {"year": 2025, "month": 5, "day": 21},
  "recommendation_status": "RECOMMENDATION_STATUS_STANDARD",
  "evidence": "phase III ASCENT, direct comparison; about 60 patients a year, fewer since trastuzumab deruxtecan was recommended for the same group",
  "health_economics": "QALY-based",
  "benchmarks": [
    {"trial": "ASCENT", "population": "without brain metastases", "n": 468, "endpoint": "ENDPOINT_PFS",
     "intervention_median_months": 5.6, "comparator_median_months": 1.7,
     "hazard_ratio": 0.41, "hr_lower": 0.32, "hr_upper": 0.52,
     "source": "Bardia et al., NEJM 2021", "data_cut": "primary analysis"},
    {"trial": "ASCENT", "population": "without brain metastases", "n": 468, "endpoint": "ENDPOINT_OS",
     "intervention_median_months": 12.1, "comparator_median_months": 6.7,
     "hazard_ratio": 0.48, "hr_lower": 0.38, "hr_upper": 0.59,
     "source": "Bardia et al., NEJM 2021", "data_cut": "primary analysis"},
    {"trial": "ASCENT", "population": "all patients", "n": 529, "endpoint": "ENDPOINT_PFS",
     "intervention_median_months": 4.8, "comparator_median_months": 1.7,
     "hazard_ratio": 0.41, "hr_lower": 0.33, "hr_upper": 0.52,
     "source": "Bardia et al., JCO 2024", "data_cut": "final analysis"},
    {"trial": "ASCENT", "population": "all patients", "n": 529, "endpoint": "ENDPOINT_OS",
     "intervention_median_months": 11.8, "comparator_median_months": 6.9,
     "hazard_ratio": 0.51, "hr_lower": 0.42, "hr_upper": 0.63,
     "source": "Bardia et al., JCO 2024", "data_cut": "final analysis"}
  ]
}$json$, 'migration', '2026-01-01T00:00:00Z');
