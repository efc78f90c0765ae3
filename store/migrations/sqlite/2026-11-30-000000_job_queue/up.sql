-- The job queue every node shares (clone, fetch, deepen, maintenance). Times in milliseconds
-- since the epoch (leases are seconds long). A job is claimed by one node at a time under a
-- lease it renews while git runs; a job whose lease ran out is queued again by any node.
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN run_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 5;
ALTER TABLE jobs ADD COLUMN locked_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
ALTER TABLE jobs ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN payload TEXT;
-- At most one queued and one running job per repository and kind: webhooks and timers
-- coalesce into the queued one.
CREATE UNIQUE INDEX jobs_one_queued ON jobs(repo_id, kind) WHERE state = 'queued';
CREATE UNIQUE INDEX jobs_one_running ON jobs(repo_id, kind) WHERE state = 'running';
CREATE INDEX jobs_ready ON jobs(state, run_at);

-- The nodes of a cluster: a node whose heartbeat is older than the lease is dead.
CREATE TABLE nodes (
    id             TEXT PRIMARY KEY NOT NULL,
    role           TEXT NOT NULL,
    internal_addr  TEXT,
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL
);
