-- Forges: a user may link GitHub, GitLab and Bitbucket to one account. A user row keeps only
-- who they are to GitVista (login, profile, plan); each forge account linked to it is a row of
-- oauth_connections with that forge's stable user id and its tokens (ciphertexts bound to the
-- user id, as before, so the GitHub tokens moved here still decrypt).
--
-- SQLite cannot drop a UNIQUE column in place: users is rebuilt (SQLite's twelve-step recipe),
-- with foreign keys off so the rows that reference users (sessions, repo_access) stay. Hence
-- metadata.toml's run_in_transaction = false and the explicit transaction here.
PRAGMA foreign_keys = OFF;
BEGIN;

CREATE TABLE oauth_connections (
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- 'github', 'gitlab' or 'bitbucket': the forge configured on this server under that name.
    provider            TEXT NOT NULL,
    -- The forge's stable id of the account (numeric on GitHub and GitLab, a uuid on Bitbucket).
    forge_user_id       TEXT NOT NULL,
    login               TEXT NOT NULL,
    access_token        BLOB NOT NULL,
    refresh_token       BLOB,
    token_expires_at    BIGINT,
    refresh_expires_at  BIGINT,
    -- 'app' (an expiring token with a refresh token) or 'oauth' (a classic OAuth App's).
    token_kind          TEXT NOT NULL,
    -- The scopes granted, space-separated (empty when the forge does not say).
    scopes              TEXT NOT NULL DEFAULT '',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider)
);
-- One GitVista account per forge account.
CREATE UNIQUE INDEX oauth_connections_account ON oauth_connections(provider, forge_user_id);

INSERT INTO oauth_connections
    SELECT id, 'github', CAST(github_id AS TEXT), github_login, access_token, refresh_token,
           token_expires_at, refresh_expires_at, token_kind, '', created_at, updated_at
    FROM users;

CREATE TABLE users_new (
    id            TEXT PRIMARY KEY NOT NULL,
    login         TEXT NOT NULL,
    email         TEXT,
    display_name  TEXT,
    avatar_url    TEXT,
    plan          TEXT NOT NULL DEFAULT 'free',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
INSERT INTO users_new
    SELECT id, github_login, email, display_name, avatar_url, plan, created_at, updated_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- Hook ids are numbers on GitHub and GitLab, uuids on Bitbucket.
CREATE TABLE webhook_registrations_new (
    repo_id     TEXT NOT NULL,
    provider    TEXT NOT NULL,
    hook_id     TEXT NOT NULL,
    user_id     TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, provider)
);
INSERT INTO webhook_registrations_new
    SELECT repo_id, provider, CAST(hook_id AS TEXT), user_id, created_at FROM webhook_registrations;
DROP TABLE webhook_registrations;
ALTER TABLE webhook_registrations_new RENAME TO webhook_registrations;
CREATE UNIQUE INDEX webhook_registrations_hook ON webhook_registrations(provider, hook_id);

COMMIT;
PRAGMA foreign_keys = ON;
