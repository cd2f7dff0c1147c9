-- A submission's request_id is kept on its application row instead of a row
-- of its own in create_requests: a submission writes one heap row and one
-- index entry fewer (docs/BENCHMARKS.md, Intake, session 6), and a used
-- request_id is just another unique key that the submit statement's
-- ON CONFLICT DO NOTHING skips, so a batch never fails on one.
-- create_requests keeps the request_ids of protocols and protocol notes.
ALTER TABLE applications ADD COLUMN request_id text;

-- Existing claims move to their applications (a claim was always made by the
-- application's creator).
UPDATE applications a SET request_id = c.request_id
  FROM create_requests c
 WHERE c.kind = 'application' AND c.resource = a.case_ref AND c.principal_id = a.created_by;
DELETE FROM create_requests WHERE kind = 'application';

-- Per caller, like create_requests' key; imported applications have none.
CREATE UNIQUE INDEX applications_request ON applications (created_by, request_id) WHERE request_id IS NOT NULL;
