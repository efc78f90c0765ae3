-- Placement: the worker that owns each repository (its clone is on that worker's disk) and an
-- epoch that grows with every change of owner. A worker acts on a repository only while the
-- epoch it was given is current: one presumed dead that comes back cannot overwrite anything.
ALTER TABLE repos ADD COLUMN owner TEXT;
ALTER TABLE repos ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX repos_owner ON repos(owner);
-- What a node reports at each heartbeat (for placement and /admin).
ALTER TABLE nodes ADD COLUMN free_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN sessions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN viewers INTEGER NOT NULL DEFAULT 0;
