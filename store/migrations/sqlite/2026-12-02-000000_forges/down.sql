-- Back to one GitHub account per user: users keep their GitHub connection's tokens; users
-- without one (signed in with another forge only) are removed.
PRAGMA foreign_keys = OFF;
BEGIN;
DELETE FROM users WHERE id NOT IN (SELECT user_id FROM oauth_connections WHERE provider = 'github');
CREATE TABLE users_old (
    id            TEXT PRIMARY KEY NOT NULL,
    github_id     BIGINT UNIQUE NOT NULL,
    github_login  TEXT NOT NULL,
    email         TEXT,
    display_name  TEXT,
    avatar_url    TEXT,
    access_token  BLOB NOT NULL,
    plan          TEXT NOT NULL DEFAULT 'free',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    refresh_token BLOB,
    token_expires_at BIGINT,
    refresh_expires_at BIGINT,
    token_kind TEXT NOT NULL DEFAULT 'oauth'
);
INSERT INTO users_old
    SELECT u.id, CAST(c.forge_user_id AS BIGINT), c.login, u.email, u.display_name, u.avatar_url,
           c.access_token, u.plan, u.created_at, u.updated_at, c.refresh_token,
           c.token_expires_at, c.refresh_expires_at, c.token_kind
    FROM users u JOIN oauth_connections c ON c.user_id = u.id AND c.provider = 'github';
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
DROP TABLE oauth_connections;
DELETE FROM sessions WHERE user_id NOT IN (SELECT id FROM users);
DELETE FROM repo_access WHERE user_id NOT IN (SELECT id FROM users);
CREATE TABLE webhook_registrations_old (
    repo_id     TEXT NOT NULL,
    provider    TEXT NOT NULL,
    hook_id     BIGINT NOT NULL,
    user_id     TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (repo_id, provider)
);
INSERT INTO webhook_registrations_old
    SELECT repo_id, provider, CAST(hook_id AS BIGINT), user_id, created_at
    FROM webhook_registrations WHERE provider <> 'bitbucket';
DROP TABLE webhook_registrations;
ALTER TABLE webhook_registrations_old RENAME TO webhook_registrations;
CREATE UNIQUE INDEX webhook_registrations_hook ON webhook_registrations(provider, hook_id);
COMMIT;
PRAGMA foreign_keys = ON;
