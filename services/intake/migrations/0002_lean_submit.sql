-- Fewer index entries per submitted application (the submit benchmark,
-- docs/BENCHMARKS.md "Intake"):
-- * ListApplications for one region walks applications_by_date and skips the
--   other regions' rows (a page of 50 reads about 250 index entries), so the
--   per-region copy of that index costs every insert more than it saves.
-- * Most applications have no region_ref; a partial unique index keeps the
--   per-region uniqueness without an index entry for those.
DROP INDEX applications_by_region_date;
ALTER TABLE applications DROP CONSTRAINT applications_region_ref;
CREATE UNIQUE INDEX applications_region_ref ON applications (region, region_ref) WHERE region_ref IS NOT NULL;
