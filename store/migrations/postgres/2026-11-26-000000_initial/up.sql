-- Hosted mode's metadata (PostgreSQL). Times are seconds since the epoch.
CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    github_id     BIGINT UNIQUE NOT NULL,
    github_login  TEXT NOT NULL,
    email         TEXT,
    display_name  TEXT,
    avatar_url    TEXT,
    access_token  BYTEA NOT NULL,
    plan          TEXT NOT NULL DEFAULT 'free',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE repos (
    id              TEXT PRIMARY KEY NOT NULL,
    canonical_url   TEXT UNIQUE NOT NULL,
    display_url     TEXT NOT NULL,
    is_private      BOOLEAN NOT NULL DEFAULT FALSE,
    state           TEXT NOT NULL DEFAULT 'pending',
    error_message   TEXT,
    progress        TEXT,
    disk_bytes      BIGINT NOT NULL DEFAULT 0,
    commit_count    BIGINT NOT NULL DEFAULT 0,
    last_fetch_at   BIGINT,
    last_access_at  BIGINT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE repo_access (
    repo_id     TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL DEFAULT 'viewer',
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, user_id)
);

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY NOT NULL,
    repo_id        TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'pending',
    progress       TEXT,
    started_at     BIGINT,
    finished_at    BIGINT,
    error_message  TEXT
);

CREATE INDEX repos_state ON repos(state);
CREATE INDEX jobs_repo ON jobs(repo_id);
