-- Regions (several Fly regions, or any deploy that names them): where each node runs, and
-- where each repository's clone should live.
--
-- A node's region (`GITVISTA_REGION`, by default Fly's `FLY_REGION`) and, on Fly, its machine
-- id (`FLY_MACHINE_ID`): web nodes answer `fly-replay` for repositories owned in another
-- region, and a clone is claimed by a worker of its repository's region.
ALTER TABLE nodes ADD COLUMN region TEXT;
ALTER TABLE nodes ADD COLUMN machine_id TEXT;

-- The region a repository is placed in: where it was first asked for (the `Fly-Region` the
-- request arrived through, or the node's own), or the nearest region that had a worker then.
-- A re-clone after its owner died stays in it while it has a live worker. (A table of its
-- own: `repos` is at diesel's 16 columns.)
CREATE TABLE repo_regions (
    repo_id  TEXT PRIMARY KEY NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    region   TEXT NOT NULL
);
