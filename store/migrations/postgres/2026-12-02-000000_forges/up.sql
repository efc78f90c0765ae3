-- Forges: a user may link GitHub, GitLab and Bitbucket to one account. A user row keeps only
-- who they are to GitVista (login, profile, plan); each forge account linked to it is a row of
-- oauth_connections with that forge's stable user id and its tokens (ciphertexts bound to the
-- user id, as before, so the GitHub tokens moved here still decrypt).
CREATE TABLE oauth_connections (
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- 'github', 'gitlab' or 'bitbucket': the forge configured on this server under that name.
    provider            TEXT NOT NULL,
    -- The forge's stable id of the account (numeric on GitHub and GitLab, a uuid on Bitbucket).
    forge_user_id       TEXT NOT NULL,
    login               TEXT NOT NULL,
    access_token        BYTEA NOT NULL,
    refresh_token       BYTEA,
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

ALTER TABLE users
    DROP COLUMN github_id,
    DROP COLUMN access_token,
    DROP COLUMN refresh_token,
    DROP COLUMN token_expires_at,
    DROP COLUMN refresh_expires_at,
    DROP COLUMN token_kind;
ALTER TABLE users RENAME COLUMN github_login TO login;

-- Hook ids are numbers on GitHub and GitLab, uuids on Bitbucket.
ALTER TABLE webhook_registrations ALTER COLUMN hook_id TYPE TEXT USING CAST(hook_id AS TEXT);
