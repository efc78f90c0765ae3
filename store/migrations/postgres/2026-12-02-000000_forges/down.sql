-- Back to one GitHub account per user: users keep their GitHub connection's tokens; users
-- without one (signed in with another forge only) are removed.
DELETE FROM users WHERE id NOT IN (SELECT user_id FROM oauth_connections WHERE provider = 'github');
ALTER TABLE users RENAME COLUMN login TO github_login;
ALTER TABLE users
    ADD COLUMN github_id BIGINT,
    ADD COLUMN access_token BYTEA,
    ADD COLUMN refresh_token BYTEA,
    ADD COLUMN token_expires_at BIGINT,
    ADD COLUMN refresh_expires_at BIGINT,
    ADD COLUMN token_kind TEXT NOT NULL DEFAULT 'oauth';
UPDATE users u SET github_id = CAST(c.forge_user_id AS BIGINT), github_login = c.login,
    access_token = c.access_token, refresh_token = c.refresh_token,
    token_expires_at = c.token_expires_at, refresh_expires_at = c.refresh_expires_at,
    token_kind = c.token_kind
    FROM oauth_connections c WHERE c.user_id = u.id AND c.provider = 'github';
ALTER TABLE users ALTER COLUMN github_id SET NOT NULL, ALTER COLUMN access_token SET NOT NULL;
ALTER TABLE users ADD CONSTRAINT users_github_id_key UNIQUE (github_id);
DROP TABLE oauth_connections;
DELETE FROM webhook_registrations WHERE provider = 'bitbucket';
ALTER TABLE webhook_registrations ALTER COLUMN hook_id TYPE BIGINT USING CAST(hook_id AS BIGINT);
